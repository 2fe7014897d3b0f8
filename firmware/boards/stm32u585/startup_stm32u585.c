/*
 * Vector table and reset for the STM32U585: copy .data, clear .bss, enable the FPU, set
 * the clock tree, then run the application. Every exception and interrupt the firmware
 * does not use lands in one handler that reports it as a fault.
 */
#include <stdint.h>

#include "board.h"
#include "stm32u585_regs.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);

void mq_reset_handler(void);
void mq_fault_handler(void);

/* Interrupts 0 (WWDG) .. 125 (LSECSSD): RM0456 chapter "Nested vectored interrupt
 * controller (NVIC)", vector table */
#define STM32U585_IRQS 126u
#define F mq_fault_handler
#define F8 F, F, F, F, F, F, F, F

typedef void (*vector_t)(void);

/* Initial stack pointer, reset, then the Armv8-M system exceptions (Armv8-M ARM B3.30:
 * NMI, HardFault, MemManage, BusFault, UsageFault, SecureFault, four reserved, SVCall,
 * DebugMonitor, reserved, PendSV, SysTick), then the interrupts. Nothing enables an
 * interrupt, so any that arrives is reported as a fault. The table takes 568 bytes and
 * sits at the start of flash, which meets VTOR's 1 KB alignment for it. */
__attribute__((section(".isr_vector"), used))
const vector_t mq_vector_table[16 + STM32U585_IRQS] = {
    (vector_t)(uintptr_t)&_estack, mq_reset_handler,
    F, F, F, F, F, F, 0, 0, 0, F, F, 0, F, F,
    F8, F8, F8, F8, F8, F8, F8, F8, F8, F8, F8, F8, F8, F8, F8, F, F, F, F, F, F,
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
