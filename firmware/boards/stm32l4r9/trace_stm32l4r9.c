/*
 * The SWO pin: on the STM32L4+ the trace pins are routed by DBGMCU_CR.TRACE_IOEN
 * (RM0432 section 57, DBGMCU), which pyOCD's SWV setup does not set.
 */
#include "board.h"
#include "stm32l4r9_regs.h"

void mq_board_trace_pins(void)
{
    DBGMCU_CR |= DBGMCU_CR_TRACE_IOEN;
}
