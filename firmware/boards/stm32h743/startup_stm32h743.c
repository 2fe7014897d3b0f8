/*
 * Reset for the STM32H743: initialise .data and .bss, give the FPU (FPv5, double
 * precision) full access, switch the Cortex-M7's L1 caches on, set the clock tree, run
 * the application. Every exception the firmware does not use goes to the fault handler.
 */
#include <stdint.h>

#include "board.h"
#include "stm32h743_regs.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);

void mq_reset_handler(void);
void mq_fault_handler(void);

/* RM0433 19.1.2, Table 145: 150 interrupt lines (0..149) after the 16 system exceptions. */
#define STM32H743_IRQS 150u

typedef void (*vector_t)(void);

/* The table goes first in flash (0x0800_0000, the boot address of the NUCLEO's default
 * option bytes); VTOR needs it aligned to a power of two above its 664 bytes. Reserved
 * slots hold the fault handler too: they are never taken. */
__attribute__((section(".isr_vector"), used, aligned(1024)))
const vector_t mq_vector_table[16 + STM32H743_IRQS] = {
    [0] = (vector_t)(uintptr_t)&_estack,
    [1] = mq_reset_handler,
    [2 ... 16 + STM32H743_IRQS - 1] = mq_fault_handler,
};

static inline void barrier(void)
{
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}

/* Both caches start in an unknown state and must be invalidated before they are enabled
 * (ARMv7-M ARM B2.2.7). The instruction cache has a one-shot invalidate (ICIALLU); the
 * data cache is invalidated line by line by set and way, the geometry read from CCSIDR
 * with CSSELR selecting the level-1 data cache (16 KB, 4 ways, 32-byte lines on the
 * STM32H743: 128 sets). A DCISW operand holds the way in its top bits and the set above
 * the line offset. */
void mq_board_caches_enable(void)
{
    barrier();
    SCB_ICIALLU = 0u;
    barrier();
    SCB_CCR |= SCB_CCR_IC;
    barrier();

    SCB_CSSELR = 0u;                                  /* level 1, data */
    barrier();
    const uint32_t ccsidr = SCB_CCSIDR;
    const uint32_t ways = CCSIDR_WAYS(ccsidr);
    const uint32_t sets = CCSIDR_SETS(ccsidr);
    const uint32_t set_shift = CCSIDR_LINESIZE(ccsidr) + 4u;   /* log2(line bytes) */
    const uint32_t way_shift = ways > 1u ? (uint32_t)__builtin_clz(ways - 1u) : 0u;
    for (uint32_t set = 0; set < sets; ++set) {
        for (uint32_t way = 0; way < ways; ++way) {
            SCB_DCISW = (ways > 1u ? way << way_shift : 0u) | (set << set_shift);
        }
    }
    barrier();
    SCB_CCR |= SCB_CCR_DC;
    barrier();
}

void mq_reset_handler(void)
{
    const uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0u;
    }
    SCB_VTOR = (uint32_t)(uintptr_t)mq_vector_table;
    SCB_CPACR |= CPACR_CP10_CP11_FULL;
    barrier();
    mq_board_caches_enable();
    mq_board_clock_init();
    main();
    for (;;) {
    }
}
