/*
 * The few STM32U585 registers the qualification firmware uses, at their non-secure
 * addresses (the part ships with TrustZone disabled, option bit TZEN = 0), with offsets
 * and bit positions from RM0456 (STM32U575/585 reference manual): section 2 "Memory and
 * bus architecture" for the base addresses, and the register chapter named at each block.
 * Written for this project; only what is used is defined.
 */
#ifndef STM32U585_REGS_H
#define STM32U585_REGS_H

#include <stdint.h>

#include "mq_armv7m.h"     /* MQ_REG and the core's own registers */

/* ---- RCC (RM0456 section 11, "Reset and clock control"), AHB3 ----------------- */
#define RCC_BASE              0x46020C00u
#define RCC_CR                MQ_REG(RCC_BASE + 0x00u)
#define RCC_CFGR1             MQ_REG(RCC_BASE + 0x1Cu)
#define RCC_PLL1CFGR          MQ_REG(RCC_BASE + 0x28u)
#define RCC_PLL1DIVR          MQ_REG(RCC_BASE + 0x34u)
#define RCC_AHB2ENR1          MQ_REG(RCC_BASE + 0x8Cu)
#define RCC_AHB3ENR           MQ_REG(RCC_BASE + 0x94u)
#define RCC_CR_HSION          (1u << 8)
#define RCC_CR_HSIRDY         (1u << 10)
#define RCC_CR_PLL1ON         (1u << 24)
#define RCC_CR_PLL1RDY        (1u << 25)
#define RCC_CFGR1_SW_MASK     (3u << 0)
#define RCC_CFGR1_SW_PLL1     (3u << 0)    /* 00 MSIS, 01 HSI16, 10 HSE, 11 PLL1 R output */
#define RCC_CFGR1_SWS_MASK    (3u << 2)
#define RCC_CFGR1_SWS_PLL1    (3u << 2)
#define RCC_PLL1CFGR_SRC_HSI16 (2u << 0)   /* PLL1SRC: 01 MSIS, 10 HSI16, 11 HSE */
#define RCC_PLL1CFGR_RGE_8_16 (3u << 2)    /* PLL1RGE: input 8..16 MHz (00: 4..8 MHz) */
#define RCC_PLL1CFGR_M_POS    8u           /* PLL1M: division = field + 1 */
#define RCC_PLL1CFGR_MBOOST_POS 12u        /* PLL1MBOOST: EPOD booster clock divider, 0 = /1 */
#define RCC_PLL1CFGR_REN      (1u << 18)   /* PLL1 R output (the system clock) enable */
#define RCC_PLL1DIVR_N_POS    0u           /* PLL1N: multiplication = field + 1 */
#define RCC_PLL1DIVR_P_POS    9u           /* PLL1P, Q, R: division = field + 1 */
#define RCC_PLL1DIVR_Q_POS    16u
#define RCC_PLL1DIVR_R_POS    24u
#define RCC_AHB3ENR_PWREN     (1u << 2)

/* ---- PWR (RM0456 section 10, "Power control"), AHB3 -------------------------- */
#define PWR_BASE              0x46020800u
#define PWR_CR3               MQ_REG(PWR_BASE + 0x08u)
#define PWR_VOSR              MQ_REG(PWR_BASE + 0x0Cu)
#define PWR_SVMSR             MQ_REG(PWR_BASE + 0x3Cu)
#define PWR_CR3_REGSEL        (1u << 1)    /* 1: the SMPS supplies VCORE (Q-suffix parts) */
#define PWR_VOSR_BOOSTRDY     (1u << 14)
#define PWR_VOSR_VOSRDY       (1u << 15)
#define PWR_VOSR_VOS_MASK     (3u << 16)
#define PWR_VOSR_VOS_RANGE1   (3u << 16)   /* 11 range 1 (up to 160 MHz), 00 range 4 */
#define PWR_VOSR_BOOSTEN      (1u << 18)   /* EPOD booster, needed above 55 MHz */
#define PWR_SVMSR_REGS        (1u << 1)    /* 1: the SMPS is the regulator in use */

/* ---- FLASH (RM0456 section 7, "Embedded flash memory"), AHB1 ------------------- */
#define FLASH_REG_BASE        0x40022000u
#define FLASH_ACR             MQ_REG(FLASH_REG_BASE + 0x00u)
#define FLASH_ACR_LATENCY_MASK 0xFu
#define FLASH_ACR_PRFTEN      (1u << 8)

/* ---- ICACHE (RM0456 section 8, "Instruction cache"), AHB1 ---------------------- */
#define ICACHE_BASE           0x40030400u
#define ICACHE_CR             MQ_REG(ICACHE_BASE + 0x00u)
#define ICACHE_SR             MQ_REG(ICACHE_BASE + 0x04u)
#define ICACHE_CR_EN          (1u << 0)
#define ICACHE_SR_BUSYF       (1u << 0)    /* an invalidation (at reset, too) is running */

/* ---- GPIO (RM0456 section 13), AHB2: port A at the base, one port per 1 KB ---- */
#define GPIOA_BASE            0x42020000u
#define GPIO_PORT_STRIDE      0x400u

/* ---- DBGMCU (RM0456 chapter "Debug support (DBG)", DBGMCU_CR) ----------------- */
#define DBGMCU_CR             MQ_REG(0xE0044004u)
#define DBGMCU_CR_TRACE_IOEN  (1u << 4)    /* trace pins assigned (TRACE_MODE 00: SWO only) */
#define DBGMCU_CR_TRACE_CLKEN (1u << 5)    /* trace clock (TRACECLKIN of the TPIU) on */

#endif /* STM32U585_REGS_H */
