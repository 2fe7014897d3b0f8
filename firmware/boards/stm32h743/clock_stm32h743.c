/*
 * The STM32H743 (revision V) at its maximum: a 480 MHz CPU clock in voltage scale 0.
 *
 *   supply    LDO (the NUCLEO-H743ZI2 has no SMPS wiring for it), RM0433 6.4 and 6.8.4
 *   scale     VOS1 then the overdrive (SYSCFG_PWRCR.ODEN) to VOS0, RM0433 6.6.2
 *   flash     LATENCY 4 wait states, WRHIGHFREQ 2, for a 240 MHz AXI clock in VOS0,
 *             RM0433 4.3.8, Table 17 (set before the clock goes up)
 *   PLL1      HSI 64 MHz / M 4 = 16 MHz (input range 8..16 MHz) x N 60 = 960 MHz VCO
 *             (wide range, 192..960 MHz in VOS0: DS12110 PLL characteristics),
 *             / P 2 = 480 MHz system clock, / R 2 = 480 MHz (pll1_r_ck, the trace
 *             clock), / Q 4 = 240 MHz; RM0433 8.5.5
 *   domains   D1CPRE /1: CPU 480 MHz; HPRE /2: AXI and AHB 240 MHz; every APB /2:
 *             120 MHz, the maxima of RM0433 8.5.6 and DS12110 for VOS0
 *
 * HSI is the source because it needs no part of the board: the ST-LINK's 8 MHz MCO on
 * the HSE pin depends on solder bridges (UM2407). HSI is running at reset, undivided.
 */
#include "board.h"
#include "stm32h743_regs.h"

#define FLASH_LATENCY_VOS0_240MHZ 4u
#define FLASH_WRHIGHFREQ_VOS0_240MHZ 2u
#define PLL1_M 4u
#define PLL1_N 60u
#define PLL1_P 2u
#define PLL1_Q 4u
#define PLL1_R 2u

/* Wait for a status bit, with a bound so a part that never answers cannot hang boot. */
static void wait_for(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    for (uint32_t spins = 0; spins < 1000000u && (*reg & mask) != value; ++spins) {
    }
}

static void voltage_scale_0(void)
{
    /* The supply configuration is written once after power-on; LDO on, no bypass. */
    PWR_CR3 = (PWR_CR3 & ~(PWR_CR3_SCUEN | PWR_CR3_BYPASS)) | PWR_CR3_LDOEN;
    wait_for(&PWR_CSR1, PWR_CSR1_ACTVOSRDY, PWR_CSR1_ACTVOSRDY);
    PWR_D3CR = (PWR_D3CR & ~PWR_D3CR_VOS_MASK) | PWR_D3CR_VOS1;
    wait_for(&PWR_D3CR, PWR_D3CR_VOSRDY, PWR_D3CR_VOSRDY);
    RCC_APB4ENR |= RCC_APB4ENR_SYSCFGEN;
    (void)RCC_APB4ENR;                           /* the clock runs before SYSCFG is used */
    SYSCFG_PWRCR |= SYSCFG_PWRCR_ODEN;
    wait_for(&PWR_D3CR, PWR_D3CR_VOSRDY, PWR_D3CR_VOSRDY);
}

void mq_board_clock_init(void)
{
    voltage_scale_0();

    const uint32_t acr = FLASH_LATENCY_VOS0_240MHZ |
                         (FLASH_WRHIGHFREQ_VOS0_240MHZ << FLASH_ACR_WRHIGHFREQ_POS);
    FLASH_ACR = (FLASH_ACR & ~(FLASH_ACR_LATENCY_MASK | FLASH_ACR_WRHIGHFREQ_MASK)) | acr;
    wait_for(&FLASH_ACR, FLASH_ACR_LATENCY_MASK | FLASH_ACR_WRHIGHFREQ_MASK, acr);

    RCC_CR = (RCC_CR & ~RCC_CR_HSIDIV_MASK) | RCC_CR_HSION;
    wait_for(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY);

    RCC_PLLCKSELR = (RCC_PLLCKSELR & ~(RCC_PLLCKSELR_PLLSRC_MASK | RCC_PLLCKSELR_DIVM1_MASK)) |
                    (PLL1_M << RCC_PLLCKSELR_DIVM1_POS);
    RCC_PLLCFGR = (RCC_PLLCFGR & ~RCC_PLLCFGR_PLL1_MASK) | RCC_PLLCFGR_PLL1RGE_8_16MHZ |
                  RCC_PLLCFGR_DIVP1EN | RCC_PLLCFGR_DIVQ1EN | RCC_PLLCFGR_DIVR1EN;
    RCC_PLL1DIVR = ((PLL1_N - 1u) << RCC_PLL1DIVR_N1_POS) | ((PLL1_P - 1u) << RCC_PLL1DIVR_P1_POS) |
                   ((PLL1_Q - 1u) << RCC_PLL1DIVR_Q1_POS) | ((PLL1_R - 1u) << RCC_PLL1DIVR_R1_POS);
    RCC_CR |= RCC_CR_PLL1ON;
    wait_for(&RCC_CR, RCC_CR_PLL1RDY, RCC_CR_PLL1RDY);

    /* Bus prescalers first, so no bus runs above its maximum after the switch. */
    RCC_D1CFGR = RCC_D1CFGR_HPRE_DIV2 | RCC_D1CFGR_D1PPRE_DIV2;          /* D1CPRE /1 */
    RCC_D2CFGR = RCC_D2CFGR_D2PPRE1_DIV2 | RCC_D2CFGR_D2PPRE2_DIV2;
    RCC_D3CFGR = RCC_D3CFGR_D3PPRE_DIV2;
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL1;
    wait_for(&RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL1);
}
