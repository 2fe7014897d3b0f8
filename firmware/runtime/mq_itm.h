/* Text log lines over ITM stimulus port 0, which the probe carries out on SWO. */
#ifndef MQ_ITM_H
#define MQ_ITM_H

#include <stdint.h>

#define MQ_ITM_LOG_PORT 0u

void mq_itm_init(void);
void mq_itm_puts(const char *text);
void mq_itm_put_u32(uint32_t value);
void mq_itm_put_hex(uint32_t value);

#endif /* MQ_ITM_H */
