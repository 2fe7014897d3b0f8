/*
 * The STM32H743 registers this board's support code uses, and the Cortex-M7 cache
 * maintenance registers, written for this project from RM0433 Rev 8 (STM32H742/743/
 * 750/753 reference manual), the ARMv7-M Architecture Reference Manual (DDI 0403E,
 * B2.2 caches, B3.2 SCB) and the Cortex-M7 TRM (DDI 0489, chapter 4 identification).
 * Only what is used is defined.
 */
#ifndef STM32H743_REGS_H
#define STM32H743_REGS_H

#include <stdint.h>

#include "mq_armv7m.h"     /* MQ_REG and the core's own registers */

/* ---- RCC (RM0433 8.7), D3 AHB1 at 0x5802_4400 -------------------------------- */
#define RCC_BASE              0x58024400u
#define RCC_CR                MQ_REG(RCC_BASE + 0x000u)
#define RCC_CFGR              MQ_REG(RCC_BASE + 0x010u)
#define RCC_D1CFGR            MQ_REG(RCC_BASE + 0x018u)
#define RCC_D2CFGR            MQ_REG(RCC_BASE + 0x01Cu)
#define RCC_D3CFGR            MQ_REG(RCC_BASE + 0x020u)
#define RCC_PLLCKSELR         MQ_REG(RCC_BASE + 0x028u)
#define RCC_PLLCFGR           MQ_REG(RCC_BASE + 0x02Cu)
#define RCC_PLL1DIVR          MQ_REG(RCC_BASE + 0x030u)
#define RCC_AHB4ENR           MQ_REG(RCC_BASE + 0x0E0u)
#define RCC_APB4ENR           MQ_REG(RCC_BASE + 0x0F4u)

#define RCC_CR_HSION          (1u << 0)
#define RCC_CR_HSIRDY         (1u << 2)
#define RCC_CR_HSIDIV_MASK    (3u << 3)          /* 0: HSI 64 MHz undivided */
#define RCC_CR_PLL1ON         (1u << 24)
#define RCC_CR_PLL1RDY        (1u << 25)
#define RCC_CFGR_SW_MASK      (7u << 0)
#define RCC_CFGR_SW_PLL1      (3u << 0)
#define RCC_CFGR_SWS_MASK     (7u << 3)
#define RCC_CFGR_SWS_PLL1     (3u << 3)
/* domain prescalers: HPRE 0b1000 = /2; the APB prescalers 0b100 = /2; D1CPRE 0 = /1 */
#define RCC_D1CFGR_HPRE_DIV2  (0x8u << 0)
#define RCC_D1CFGR_D1PPRE_DIV2 (0x4u << 4)
#define RCC_D1CFGR_D1CPRE_MASK (0xFu << 8)
#define RCC_D2CFGR_D2PPRE1_DIV2 (0x4u << 4)
#define RCC_D2CFGR_D2PPRE2_DIV2 (0x4u << 8)
#define RCC_D3CFGR_D3PPRE_DIV2 (0x4u << 4)
#define RCC_PLLCKSELR_PLLSRC_MASK (3u << 0)      /* 0: HSI */
#define RCC_PLLCKSELR_DIVM1_POS 4u
#define RCC_PLLCKSELR_DIVM1_MASK (0x3Fu << 4)
#define RCC_PLLCFGR_PLL1_MASK (0xFu << 0)        /* FRACEN, VCOSEL, RGE of PLL1 */
#define RCC_PLLCFGR_PLL1RGE_8_16MHZ (3u << 2)    /* VCOSEL 0: wide VCO, 192..960 MHz */
#define RCC_PLLCFGR_DIVP1EN   (1u << 16)
#define RCC_PLLCFGR_DIVQ1EN   (1u << 17)
#define RCC_PLLCFGR_DIVR1EN   (1u << 18)
#define RCC_PLL1DIVR_N1_POS   0u                 /* register value = N - 1 */
#define RCC_PLL1DIVR_P1_POS   9u                 /* register value = P - 1 */
#define RCC_PLL1DIVR_Q1_POS   16u
#define RCC_PLL1DIVR_R1_POS   24u
#define RCC_APB4ENR_SYSCFGEN  (1u << 1)

/* ---- PWR (RM0433 6.8), at 0x5802_4800 ------------------------------------------ */
#define PWR_BASE              0x58024800u
#define PWR_CSR1              MQ_REG(PWR_BASE + 0x04u)
#define PWR_CR3               MQ_REG(PWR_BASE + 0x0Cu)
#define PWR_D3CR              MQ_REG(PWR_BASE + 0x18u)
#define PWR_CSR1_ACTVOSRDY    (1u << 13)
#define PWR_CR3_BYPASS        (1u << 0)
#define PWR_CR3_LDOEN         (1u << 1)
#define PWR_CR3_SCUEN         (1u << 2)
#define PWR_D3CR_VOSRDY       (1u << 13)
#define PWR_D3CR_VOS_MASK     (3u << 14)
#define PWR_D3CR_VOS1         (3u << 14)

/* ---- SYSCFG (RM0433 12.3), at 0x5800_0400 ----------------------------------------- */
#define SYSCFG_PWRCR          MQ_REG(0x58000400u + 0x2Cu)
#define SYSCFG_PWRCR_ODEN     (1u << 0)          /* overdrive: VOS1 -> VOS0 (rev V) */

/* ---- FLASH (RM0433 4.9.1), registers at 0x5200_2000 -------------------------------- */
#define FLASH_ACR             MQ_REG(0x52002000u)
#define FLASH_ACR_LATENCY_MASK 0xFu
#define FLASH_ACR_WRHIGHFREQ_POS 4u
#define FLASH_ACR_WRHIGHFREQ_MASK (3u << 4)

/* ---- debug: DBGMCU (RM0433 60.5.8) and the SWO funnel (60.5.7), AHB view ---------- */
#define DBGMCU_CR             MQ_REG(0x5C001004u)
#define DBGMCU_CR_TRACECLKEN  (1u << 20)
#define DBGMCU_CR_D1DBGCKEN   (1u << 21)
#define DBGMCU_CR_D3DBGCKEN   (1u << 22)
#define SWTF_CTRL             MQ_REG(0x5C004000u)
#define SWTF_LAR              MQ_REG(0x5C004FB0u)
#define SWTF_CTRL_ENS0        (1u << 0)          /* slave port 0: the Cortex-M7's trace */

/* ---- Cortex-M7 caches (ARMv7-M ARM B2.2.7 and B3.2; Cortex-M7 TRM 4.1) -------------- */
#define SCB_CCR               MQ_REG(0xE000ED14u)
#define SCB_CCSIDR            MQ_REG(0xE000ED80u)
#define SCB_CSSELR            MQ_REG(0xE000ED84u)
#define SCB_ICIALLU           MQ_REG(0xE000EF50u)
#define SCB_DCISW             MQ_REG(0xE000EF60u)
#define SCB_CCR_DC            (1u << 16)
#define SCB_CCR_IC            (1u << 17)
#define CCSIDR_LINESIZE(v)    ((v) & 0x7u)               /* log2(words per line) - 2 */
#define CCSIDR_WAYS(v)        ((((v) >> 3) & 0x3FFu) + 1u)
#define CCSIDR_SETS(v)        ((((v) >> 13) & 0x7FFFu) + 1u)

#endif /* STM32H743_REGS_H */
