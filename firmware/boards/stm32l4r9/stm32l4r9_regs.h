/*
 * The few STM32L4R9 and Cortex-M4 registers the qualification firmware uses,
 * with addresses and bit positions from RM0432 (STM32L4+ reference manual) and
 * the ARMv7-M Architecture Reference Manual. Written for this project; only
 * what is used is defined.
 */
#ifndef STM32L4R9_REGS_H
#define STM32L4R9_REGS_H

#include <stdint.h>

#include "mq_armv7m.h"     /* MQ_REG and the core's own registers */


/* ---- RCC (RM0432 section 6) ------------------------------------------------ */
#define RCC_BASE            0x40021000u
#define RCC_CR              MQ_REG(RCC_BASE + 0x00u)
#define RCC_CFGR            MQ_REG(RCC_BASE + 0x08u)
#define RCC_PLLCFGR         MQ_REG(RCC_BASE + 0x0Cu)
#define RCC_AHB2ENR         MQ_REG(RCC_BASE + 0x4Cu)
#define RCC_APB1ENR1        MQ_REG(RCC_BASE + 0x58u)
#define RCC_CR_HSION        (1u << 8)
#define RCC_CR_HSIRDY       (1u << 10)
#define RCC_CR_PLLON        (1u << 24)
#define RCC_CR_PLLRDY       (1u << 25)
#define RCC_CFGR_SW_MASK    (3u << 0)
#define RCC_CFGR_SW_PLL     (3u << 0)
#define RCC_CFGR_SWS_MASK   (3u << 2)
#define RCC_CFGR_SWS_PLL    (3u << 2)
#define RCC_CFGR_HPRE_MASK  (0xFu << 4)
#define RCC_CFGR_HPRE_DIV2  (0x8u << 4)
#define RCC_PLLCFGR_SRC_HSI (2u << 0)
#define RCC_PLLCFGR_M_POS   4u           /* division factor M = field + 1 */
#define RCC_PLLCFGR_N_POS   8u
#define RCC_PLLCFGR_REN     (1u << 24)
#define RCC_PLLCFGR_R_POS   25u          /* 0: /2, 1: /4, 2: /6, 3: /8 */
#define RCC_APB1ENR1_PWREN  (1u << 28)

/* ---- PWR (RM0432 section 5) ------------------------------------------------ */
#define PWR_BASE            0x40007000u
#define PWR_CR1             MQ_REG(PWR_BASE + 0x00u)
#define PWR_SR2             MQ_REG(PWR_BASE + 0x14u)
#define PWR_CR5             MQ_REG(PWR_BASE + 0x80u)
#define PWR_CR1_VOS_MASK    (3u << 9)
#define PWR_CR1_VOS_RANGE1  (1u << 9)
#define PWR_SR2_VOSF        (1u << 10)
#define PWR_CR5_R1MODE      (1u << 8)    /* 0: range 1 boost mode (needed above 80 MHz) */

/* ---- FLASH (RM0432 section 3) ---------------------------------------------- */
#define FLASH_BASE_REG      0x40022000u
#define FLASH_ACR           MQ_REG(FLASH_BASE_REG + 0x00u)
#define FLASH_ACR_LATENCY_MASK 0xFu
#define FLASH_ACR_PRFTEN    (1u << 8)
#define FLASH_ACR_ICEN      (1u << 9)
#define FLASH_ACR_DCEN      (1u << 10)

/* ---- DBGMCU ------------------------------------------------------------------ */
#define DBGMCU_CR           MQ_REG(0xE0042004u)
#define DBGMCU_CR_TRACE_IOEN (1u << 5)

#endif /* STM32L4R9_REGS_H */
