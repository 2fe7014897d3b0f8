/*
 * The inference marker pin (RM0456 section 13, GPIO): push-pull output, driven through
 * BSRR so setting and clearing are single stores that cannot disturb the other pins of
 * the port. The port's clock is GPIOxEN in RCC_AHB2ENR1 (RM0456 section 11).
 */
#include "board.h"
#include "stm32u585_regs.h"

#define GPIO_MODER(base)  MQ_REG((base) + 0x00u)
#define GPIO_BSRR(base)   MQ_REG((base) + 0x18u)
#define GPIO_MODE_OUTPUT  1u

void mq_board_marker_init(void)
{
    RCC_AHB2ENR1 |= 1u << MQ_MARKER_RCC_AHB2ENR1_BIT;
    (void)RCC_AHB2ENR1;                    /* the clock is on before the port is used */
    GPIO_BSRR(MQ_MARKER_GPIO_BASE) = 1u << (MQ_MARKER_PIN + 16u);
    uint32_t mode = GPIO_MODER(MQ_MARKER_GPIO_BASE);
    mode &= ~(3u << (2u * MQ_MARKER_PIN));
    mode |= GPIO_MODE_OUTPUT << (2u * MQ_MARKER_PIN);
    GPIO_MODER(MQ_MARKER_GPIO_BASE) = mode;
}

void mq_board_marker(int high)
{
    GPIO_BSRR(MQ_MARKER_GPIO_BASE) = 1u << (MQ_MARKER_PIN + (high ? 0u : 16u));
}
