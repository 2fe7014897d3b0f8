/*
 * System clock: HSI16 -> PLL1 (M = 1, N = 20, R = 2) = 160 MHz, the STM32U585's maximum,
 * with VCORE from the SMPS in voltage range 1, the EPOD booster on and 4 flash wait
 * states, and the 8 KB instruction cache in front of the flash. RM0456:
 *
 * - section 10 (PWR), "SMPS and LDO embedded regulators": PWR_CR3.REGSEL selects the
 *   SMPS (the B-U585I-IOT02A carries the SMPS variant, STM32U585AII6Q); SVMSR.REGS says
 *   when it has taken over.
 * - section 10 (PWR), "Dynamic voltage scaling management": range 1 is needed above
 *   110 MHz; above 55 MHz the EPOD booster (VOSR.BOOSTEN) must be on, and the clock may
 *   only be raised once VOSR.VOSRDY and VOSR.BOOSTRDY are set. The booster is clocked from
 *   the PLL1 input divided by PLL1MBOOST, which must give 4 to 16 MHz: HSI16 / 1.
 * - section 7 (FLASH), "Read access latency", table "Number of wait states according to
 *   CPU clock (HCLK) frequency": range 1 needs 4 wait states up to 160 MHz. The latency
 *   goes up before the clock does, and is read back until it has taken effect.
 * - section 11 (RCC), "PLL": the input (ref1_ck) range 8..16 MHz is PLL1RGE = 11; the VCO
 *   runs at 16 MHz x 20 = 320 MHz (inside its 128..544 MHz range) and PLL1R = 2 gives
 *   160 MHz. Unlike the STM32L4+, no AHB prescaler step is required for the switch.
 * - section 8 (ICACHE): enabled once the invalidation that follows reset (BUSYF) is over.
 */
#include "board.h"
#include "stm32u585_regs.h"

#define FLASH_WAIT_STATES_160MHZ 4u
#define PLL1_M 1u
#define PLL1_N 20u
#define PLL1_PQR 2u

static void wait_until_set(volatile uint32_t *reg, uint32_t mask)
{
    for (uint32_t spins = 0; spins < 1000000u && (*reg & mask) != mask; ++spins) {
    }
}

static void wait_until_clear(volatile uint32_t *reg, uint32_t mask)
{
    for (uint32_t spins = 0; spins < 1000000u && (*reg & mask); ++spins) {
    }
}

void mq_board_clock_init(void)
{
    RCC_AHB3ENR |= RCC_AHB3ENR_PWREN;
    (void)RCC_AHB3ENR;                             /* PWR is clocked before it is written */
    PWR_CR3 |= PWR_CR3_REGSEL;                     /* VCORE from the SMPS */
    wait_until_set(&PWR_SVMSR, PWR_SVMSR_REGS);

    RCC_CR |= RCC_CR_HSION;
    wait_until_set(&RCC_CR, RCC_CR_HSIRDY);
    /* PLL1 from HSI16 before the booster is enabled: PLL1MBOOST divides this clock for it */
    RCC_PLL1CFGR = RCC_PLL1CFGR_SRC_HSI16 | RCC_PLL1CFGR_RGE_8_16 |
                   ((PLL1_M - 1u) << RCC_PLL1CFGR_M_POS) | (0u << RCC_PLL1CFGR_MBOOST_POS) |
                   RCC_PLL1CFGR_REN;
    RCC_PLL1DIVR = ((PLL1_N - 1u) << RCC_PLL1DIVR_N_POS) |
                   ((PLL1_PQR - 1u) << RCC_PLL1DIVR_P_POS) |
                   ((PLL1_PQR - 1u) << RCC_PLL1DIVR_Q_POS) |
                   ((PLL1_PQR - 1u) << RCC_PLL1DIVR_R_POS);

    PWR_VOSR = (PWR_VOSR & ~PWR_VOSR_VOS_MASK) | PWR_VOSR_VOS_RANGE1 | PWR_VOSR_BOOSTEN;
    wait_until_set(&PWR_VOSR, PWR_VOSR_VOSRDY);

    FLASH_ACR = (FLASH_ACR & ~FLASH_ACR_LATENCY_MASK) | FLASH_WAIT_STATES_160MHZ |
                FLASH_ACR_PRFTEN;
    for (uint32_t spins = 0; spins < 1000000u &&
                             (FLASH_ACR & FLASH_ACR_LATENCY_MASK) != FLASH_WAIT_STATES_160MHZ;
         ++spins) {
    }

    RCC_CR |= RCC_CR_PLL1ON;
    wait_until_set(&RCC_CR, RCC_CR_PLL1RDY);
    wait_until_set(&PWR_VOSR, PWR_VOSR_BOOSTRDY);

    wait_until_clear(&ICACHE_SR, ICACHE_SR_BUSYF);
    ICACHE_CR |= ICACHE_CR_EN;

    RCC_CFGR1 = (RCC_CFGR1 & ~RCC_CFGR1_SW_MASK) | RCC_CFGR1_SW_PLL1;
    for (uint32_t spins = 0; spins < 1000000u &&
                             (RCC_CFGR1 & RCC_CFGR1_SWS_MASK) != RCC_CFGR1_SWS_PLL1; ++spins) {
    }
}
