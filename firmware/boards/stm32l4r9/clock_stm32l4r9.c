/*
 * System clock: HSI16 -> PLL (M = 1, N = 15, R = 2) = 120 MHz, in voltage range 1
 * boost mode with 5 flash wait states, the sequence RM0432 prescribes for going
 * above 80 MHz (AHB prescaler /2 across the switch, then back to /1).
 */
#include "board.h"
#include "stm32l4r9_regs.h"

#define FLASH_WAIT_STATES_120MHZ 5u

static void wait_until_set(volatile uint32_t *reg, uint32_t mask)
{
    for (uint32_t spins = 0; spins < 1000000u && !(*reg & mask); ++spins) {
    }
}

void mq_board_clock_init(void)
{
    RCC_APB1ENR1 |= RCC_APB1ENR1_PWREN;
    PWR_CR1 = (PWR_CR1 & ~PWR_CR1_VOS_MASK) | PWR_CR1_VOS_RANGE1;
    for (uint32_t spins = 0; spins < 1000000u && (PWR_SR2 & PWR_SR2_VOSF); ++spins) {
    }
    PWR_CR5 &= ~PWR_CR5_R1MODE;                        /* range 1 boost */

    FLASH_ACR = (FLASH_ACR & ~FLASH_ACR_LATENCY_MASK) | FLASH_WAIT_STATES_120MHZ |
                FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;

    RCC_CR |= RCC_CR_HSION;
    wait_until_set(&RCC_CR, RCC_CR_HSIRDY);
    RCC_PLLCFGR = RCC_PLLCFGR_SRC_HSI | (0u << RCC_PLLCFGR_M_POS) | (15u << RCC_PLLCFGR_N_POS) |
                  (0u << RCC_PLLCFGR_R_POS) | RCC_PLLCFGR_REN;
    RCC_CR |= RCC_CR_PLLON;
    wait_until_set(&RCC_CR, RCC_CR_PLLRDY);

    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_HPRE_MASK) | RCC_CFGR_HPRE_DIV2;
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    for (uint32_t spins = 0; spins < 1000000u &&
                             (RCC_CFGR & RCC_CFGR_SWS_MASK) != RCC_CFGR_SWS_PLL; ++spins) {
    }
    for (volatile uint32_t delay = 0; delay < 64u; ++delay) {   /* >= 1 us at 60 MHz */
    }
    RCC_CFGR &= ~RCC_CFGR_HPRE_MASK;                   /* AHB back to /1: 120 MHz */
}
