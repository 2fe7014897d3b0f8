/* NUCLEO-H743ZI2 board support for the runtime: the clock tree (480 MHz), the core clock
 * the mailbox reports, the SWO route, and the inference marker pin a power monitor's
 * logic input cuts the energy window with. */
#ifndef MQ_BOARD_H
#define MQ_BOARD_H

#include <stdint.h>

#include "stm32h743_regs.h"

#define MQ_BOARD_NAME "stm32h743"
#define MQ_CORE_CLOCK_HZ 480000000u

/* Marker: PG12, Arduino D7 on the board's ST Zio connector (UM2407, Zio pinout; Zephyr's
 * board files map D7 the same way). Nothing else on the board drives it; check UM2407
 * for your board revision before wiring an instrument to it. */
#define MQ_MARKER_GPIO_BASE 0x58021800u      /* GPIOG: 0x5802_0000 + 6 * 0x400 */
#define MQ_MARKER_PIN 12u
#define MQ_MARKER_RCC_AHB4ENR_BIT 6u         /* GPIOGEN */

void mq_board_clock_init(void);
void mq_board_caches_enable(void);
void mq_board_marker_init(void);
void mq_board_marker(int high);

/* The Cortex-M7's ITM reaches the SWO pin (PB3, TRACESWO in its reset alternate function)
 * through the D3 debug domain (RM0433 60.5.7): the trace clock and the debug domains'
 * clocks must run (DBGMCU_CR) and the SWO funnel must pass slave port 0 (SWTF_CTRL.ENS0,
 * closed at reset). The SWO's own prescaler and protocol are the debugger's to set. */
static inline void mq_board_trace_pins(void)
{
    DBGMCU_CR |= DBGMCU_CR_TRACECLKEN | DBGMCU_CR_D1DBGCKEN | DBGMCU_CR_D3DBGCKEN;
    SWTF_LAR = CORESIGHT_UNLOCK;
    SWTF_CTRL |= SWTF_CTRL_ENS0;
}

#endif /* MQ_BOARD_H */
