/* What the runtime needs from a board: its clock, its core clock frequency, the SWO pin,
 * and a marker pin that is high while an inference runs, so a power monitor's logic
 * input (PPK2 D0, STLINK-V3PWR trigger) can cut the energy window. */
#ifndef MQ_BOARD_H
#define MQ_BOARD_H

#include <stdint.h>

#include "stm32u585_regs.h"

#define MQ_BOARD_NAME "stm32u585"
#define MQ_CORE_CLOCK_HZ 160000000u

/* Marker: PB2, the ARDUINO connector's D3 on the B-U585I-IOT02A (UM2839, "ARDUINO Uno V3
 * connectors"); nothing else on the board drives it. Check UM2839 for your board revision
 * before wiring an instrument, and move it here if needed. */
#define MQ_MARKER_GPIO_BASE (GPIOA_BASE + 1u * GPIO_PORT_STRIDE)    /* GPIOB */
#define MQ_MARKER_PIN 2u
#define MQ_MARKER_RCC_AHB2ENR1_BIT 1u       /* GPIOBEN */

void mq_board_clock_init(void);
void mq_board_marker_init(void);
void mq_board_marker(int high);
/* Route the trace (SWO) pin before ITM is used. TRACESWO is PB3, which leaves reset in
 * alternate-function mode with AF0 (JTDO/TRACESWO), so no GPIO set-up is needed; what
 * is needed is DBGMCU_CR: TRACE_IOEN assigns the pin (TRACE_MODE 00, asynchronous) and
 * TRACE_CLKEN clocks the TPIU (RM0456, "Debug support (DBG)", DBGMCU_CR). */
static inline void mq_board_trace_pins(void)
{
    DBGMCU_CR |= DBGMCU_CR_TRACE_IOEN | DBGMCU_CR_TRACE_CLKEN;
}

#endif /* MQ_BOARD_H */
