/* What the runtime needs from a board: its clock and its core clock frequency. */
#ifndef MQ_BOARD_H
#define MQ_BOARD_H

#include <stdint.h>

#define MQ_BOARD_NAME "stm32l4r9"
#define MQ_CORE_CLOCK_HZ 120000000u

void mq_board_clock_init(void);

#endif /* MQ_BOARD_H */
