/*
 * Vector table and reset for the STM32L4R9: copy .data, clear .bss, enable the
 * FPU, set the clock tree, then run the application. Every interrupt the
 * firmware does not use lands in one handler that reports it as a fault.
 */
#include <stdint.h>

#include "board.h"
#include "stm32l4r9_regs.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);

void mq_reset_handler(void);
void mq_fault_handler(void);

#define STM32L4R9_IRQS 95u
#define F mq_fault_handler
#define F8 F, F, F, F, F, F, F, F

typedef void (*vector_t)(void);

/* Initial stack pointer, reset, then NMI .. SysTick, then the 95 interrupts:
 * nothing enables an interrupt, so any that arrives is reported as a fault. */
__attribute__((section(".isr_vector"), used))
const vector_t mq_vector_table[16 + STM32L4R9_IRQS] = {
    (vector_t)(uintptr_t)&_estack, mq_reset_handler,
    F, F, F, F, F, 0, 0, 0, 0, F, F, 0, F, F,
    F8, F8, F8, F8, F8, F8, F8, F8, F8, F8, F8, F, F, F, F, F, F, F,
};

void mq_reset_handler(void)
{
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata; ++dst) {
        *dst = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss; ++dst) {
        *dst = 0;
    }
    SCB_VTOR = (uint32_t)(uintptr_t)mq_vector_table;
    SCB_CPACR |= CPACR_CP10_CP11_FULL;         /* FPU: full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    mq_board_clock_init();
    main();
    for (;;) {
    }
}
