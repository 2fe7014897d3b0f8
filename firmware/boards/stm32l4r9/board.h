/* What the runtime needs from a board: its clock, its core clock frequency, the SWO pin,
 * and a marker pin that is high while an inference runs, so a power monitor's logic
 * input (PPK2 D0, STLINK-V3PWR trigger) can cut the energy window. */
#ifndef MQ_BOARD_H
#define MQ_BOARD_H

#include <stdint.h>

#include "stm32l4r9_regs.h"

#define MQ_BOARD_NAME "stm32l4r9"
#define MQ_CORE_CLOCK_HZ 120000000u

/* Marker: PB2. Check UM2271 for what it is wired to on your board revision before
 * connecting an instrument, and move it here if needed. */
#define MQ_MARKER_GPIO_BASE 0x48000400u      /* GPIOB */
#define MQ_MARKER_PIN 2u
#define MQ_MARKER_RCC_AHB2ENR_BIT 1u         /* GPIOBEN */

void mq_board_clock_init(void);
void mq_board_marker_init(void);
void mq_board_marker(int high);
/* Route the trace (SWO) pin before ITM is used: on the STM32L4+ DBGMCU_CR.TRACE_IOEN
 * (RM0432 section 57, DBGMCU), which pyOCD's SWV setup does not set. */
static inline void mq_board_trace_pins(void)
{
    DBGMCU_CR |= DBGMCU_CR_TRACE_IOEN;
}

#endif /* MQ_BOARD_H */
