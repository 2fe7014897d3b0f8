/*
 * The inference marker (RM0433 11.4, GPIO): the pin is a push-pull output, low until an
 * inference starts. It is only ever driven through BSRR, whose set and reset halves act
 * on one pin each in a single store, so no other pin of the port can be disturbed.
 */
#include "board.h"
#include "stm32h743_regs.h"

#define PORT_MODER(base)      MQ_REG((base) + 0x00u)
#define PORT_BSRR(base)       MQ_REG((base) + 0x18u)
#define MODER_FIELD(pin)      (3u << (2u * (pin)))
#define MODER_OUTPUT(pin)     (1u << (2u * (pin)))
#define BSRR_SET(pin)         (1u << (pin))
#define BSRR_RESET(pin)       (1u << ((pin) + 16u))

void mq_board_marker_init(void)
{
    RCC_AHB4ENR |= 1u << MQ_MARKER_RCC_AHB4ENR_BIT;
    (void)RCC_AHB4ENR;                   /* read back: the port is clocked before use */
    PORT_BSRR(MQ_MARKER_GPIO_BASE) = BSRR_RESET(MQ_MARKER_PIN);
    PORT_MODER(MQ_MARKER_GPIO_BASE) = (PORT_MODER(MQ_MARKER_GPIO_BASE) &
                                       ~MODER_FIELD(MQ_MARKER_PIN)) |
                                      MODER_OUTPUT(MQ_MARKER_PIN);
}

void mq_board_marker(int high)
{
    PORT_BSRR(MQ_MARKER_GPIO_BASE) = high ? BSRR_SET(MQ_MARKER_PIN) : BSRR_RESET(MQ_MARKER_PIN);
}
