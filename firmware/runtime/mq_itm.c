/*
 * ITM output. Writes go out only while a debugger has enabled tracing
 * (DEMCR.TRCENA, ITM_TCR.ITMENA and the port's TER bit); otherwise they are
 * dropped, so a board without a probe never blocks on a full FIFO.
 */
#include "mq_itm.h"

#include "board.h"
#include "mq_armv7m.h"

void mq_itm_init(void)
{
    mq_board_trace_pins();                  /* the SWO pin: vendor-specific */
    DEMCR |= DEMCR_TRCENA;
    ITM_LAR = CORESIGHT_UNLOCK;
    ITM_TCR |= ITM_TCR_ITMENA | ITM_TCR_SWOENA | (1u << ITM_TCR_BUSID_POS);
    ITM_TER |= 1u << MQ_ITM_LOG_PORT;
}

static int port_enabled(void)
{
    return (DEMCR & DEMCR_TRCENA) && (ITM_TCR & ITM_TCR_ITMENA) &&
           (ITM_TER & (1u << MQ_ITM_LOG_PORT));
}

static void put_char(char c)
{
    for (uint32_t spins = 0; spins < 100000u; ++spins) {
        if (ITM_STIM32(MQ_ITM_LOG_PORT) & 1u) {      /* FIFO ready */
            ITM_STIM8(MQ_ITM_LOG_PORT) = (uint8_t)c;
            return;
        }
    }
}

void mq_itm_puts(const char *text)
{
    if (!port_enabled()) {
        return;
    }
    while (*text) {
        put_char(*text++);
    }
}

void mq_itm_put_u32(uint32_t value)
{
    char digits[11];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value);
    char text[12];
    for (int i = 0; i < n; ++i) {
        text[i] = digits[n - 1 - i];
    }
    text[n] = 0;
    mq_itm_puts(text);
}

void mq_itm_put_hex(uint32_t value)
{
    static const char hex[] = "0123456789abcdef";
    char text[11] = "0x";
    for (int i = 0; i < 8; ++i) {
        text[2 + i] = hex[(value >> (28 - 4 * i)) & 0xFu];
    }
    text[10] = 0;
    mq_itm_puts(text);
}
