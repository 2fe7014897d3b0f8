/*
 * Fault reporting: any fault or unexpected exception records the stacked PC,
 * LR, SP and the fault status registers in the mailbox, says so over ITM, and
 * parks the core, so the host sees a fault instead of a silent hang.
 */
#include "mq_itm.h"
#include "mq_mailbox.h"
#include "mq_armv7m.h"

__attribute__((used)) void mq_fault_report(const uint32_t *frame, uint32_t sp);

__attribute__((naked)) void mq_fault_handler(void)
{
    __asm__ volatile(
        "tst lr, #4\n\t"           /* which stack held the exception frame */
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mov r1, r0\n\t"
        "b mq_fault_report\n\t");
}

void mq_fault_report(const uint32_t *frame, uint32_t sp)
{
    mq_mailbox.fault_pc = frame[6];
    mq_mailbox.fault_lr = frame[5];
    mq_mailbox.fault_xpsr = frame[7];
    mq_mailbox.fault_sp = sp;
    mq_mailbox.fault_cfsr = SCB_CFSR;
    mq_mailbox.fault_hfsr = SCB_HFSR;
    mq_mailbox.fault_mmfar = SCB_MMFAR;
    mq_mailbox.fault_bfar = SCB_BFAR;
    mq_mailbox.state = MQ_STATE_FAULT;
    mq_itm_puts("FAULT pc=");
    mq_itm_put_hex(frame[6]);
    mq_itm_puts(" lr=");
    mq_itm_put_hex(frame[5]);
    mq_itm_puts(" cfsr=");
    mq_itm_put_hex(SCB_CFSR);
    mq_itm_puts(" hfsr=");
    mq_itm_put_hex(SCB_HFSR);
    mq_itm_puts("\n");
    for (;;) {
    }
}
