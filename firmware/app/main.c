/*
 * The qualification firmware: wait for the host's command in the mailbox, run
 * one inference, publish the output with DWT cycles (total and per layer) and
 * the arena and stack high-water marks, log a summary over ITM, repeat.
 */
#include <stddef.h>
#include <string.h>

#include "board.h"
#include "mq_itm.h"
#include "mq_mailbox.h"
#include "mq_model.h"
#include "mq_armv7m.h"

#define PAINT_BYTE 0xA5u
#define PAINT_WORD 0xA5A5A5A5u
#define STACK_GUARD_BYTES 256u

extern uint32_t _sstack, _estack;

__attribute__((used)) mq_mailbox_t mq_mailbox;
/* 1 + the index of the layer running now, 0 between layers: after a fault the host reads
 * it through the debugger (by this symbol) to say which layer faulted. */
__attribute__((used)) volatile uint32_t mq_current_layer;

typedef struct {
    uint32_t started;
} layer_timer_t;

static void time_layer(void *context, int layer, int phase)
{
    layer_timer_t *timer = (layer_timer_t *)context;
    const uint32_t now = DWT_CYCCNT;
    if (phase == MQ_LAYER_BEGIN) {
        mq_current_layer = (uint32_t)layer + 1u;
        timer->started = now;
    } else {
        mq_current_layer = 0u;
        if ((uint32_t)layer < MQ_MAX_LAYERS) {
            mq_mailbox.layer_cycles[layer] = now - timer->started;
        }
    }
}

static void paint_stack(void)
{
    uint32_t here;
    uint32_t *limit = (uint32_t *)((uintptr_t)&here - STACK_GUARD_BYTES);
    for (uint32_t *word = &_sstack; word < limit; ++word) {
        *word = PAINT_WORD;
    }
}

static uint32_t stack_high_water(void)
{
    const uint32_t *word = &_sstack;
    while (word < &_estack && *word == PAINT_WORD) {
        ++word;
    }
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)word);
}

static uint32_t arena_high_water(void)
{
    uint32_t used = mq_model_info.arena_bytes;
    while (used > 0 && (uint8_t)mq_model_arena[used - 1] == PAINT_BYTE) {
        --used;
    }
    return used;
}

static void log_summary(void)
{
    for (uint32_t layer = 0; layer < mq_model_info.layers; ++layer) {
        mq_itm_puts("LAYER ");
        mq_itm_put_u32(layer);
        mq_itm_puts(" ");
        mq_itm_puts(mq_model_info.layer_names[layer]);
        mq_itm_puts(" cycles=");
        mq_itm_put_u32(mq_mailbox.layer_cycles[layer]);
        mq_itm_puts("\n");
    }
    mq_itm_puts("INFERENCE seq=");
    mq_itm_put_u32(mq_mailbox.sequence);
    mq_itm_puts(" cycles=");
    mq_itm_put_u32(mq_mailbox.cycles_total);
    mq_itm_puts(" arena_hw=");
    mq_itm_put_u32(mq_mailbox.arena_high_water_bytes);
    mq_itm_puts(" stack_hw=");
    mq_itm_put_u32(mq_mailbox.stack_high_water_bytes);
    mq_itm_puts("\n");
}

static void mailbox_init(void)
{
    memset(&mq_mailbox, 0, sizeof mq_mailbox);
    mq_mailbox.version = MQ_MAILBOX_VERSION;
    mq_mailbox.input_bytes = mq_model_info.input_bytes;
    mq_mailbox.output_bytes = mq_model_info.output_bytes;
    mq_mailbox.layers = mq_model_info.layers;
    mq_mailbox.arena_bytes = mq_model_info.arena_bytes;
    mq_mailbox.stack_bytes = (uint32_t)((uintptr_t)&_estack - (uintptr_t)&_sstack);
    mq_mailbox.core_clock_hz = MQ_CORE_CLOCK_HZ;
    mq_mailbox.input_offset = (uint32_t)offsetof(mq_mailbox_t, input);
    mq_mailbox.output_offset = (uint32_t)offsetof(mq_mailbox_t, output);
    mq_mailbox.layer_cycles_offset = (uint32_t)offsetof(mq_mailbox_t, layer_cycles);
    if (mq_model_info.layers > MQ_MAX_LAYERS) {
        mq_mailbox.error_code = MQ_ERROR_TOO_MANY_LAYERS;
        mq_mailbox.state = MQ_STATE_ERROR;
    }
    mq_mailbox.magic = MQ_MAILBOX_MAGIC;     /* last: the host waits for it */
}

/* Where every inference ends, its results published and logged: a debugger (the virtual
 * board's runner) can stop here rather than poll the mailbox. Kept as a call of its own. */
__attribute__((noinline, used)) void mq_inference_done(void)
{
    __asm__ volatile("" ::: "memory");
}

int main(void)
{
    mq_itm_init();
    mq_board_marker_init();
    DEMCR |= DEMCR_TRCENA;
    DWT_CYCCNT = 0;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    memset(mq_model_arena, PAINT_BYTE, mq_model_info.arena_bytes);
    paint_stack();
    mailbox_init();
    mq_itm_puts("BOOT model=");
    mq_itm_puts(mq_model_info.name);
    mq_itm_puts(" board=" MQ_BOARD_NAME " arena=");
    mq_itm_put_u32(mq_model_info.arena_bytes);
    mq_itm_puts(" layers=");
    mq_itm_put_u32(mq_model_info.layers);
    mq_itm_puts("\n");
    if (mq_mailbox.state == MQ_STATE_ERROR) {
        for (;;) {
        }
    }
    for (;;) {
        mq_mailbox.state = MQ_STATE_IDLE;
        while (mq_mailbox.command != MQ_COMMAND_RUN) {
        }
        mq_mailbox.command = MQ_COMMAND_NONE;
        mq_mailbox.state = MQ_STATE_BUSY;
        layer_timer_t timer = {0};
        mq_board_marker(1);
        const uint32_t start = DWT_CYCCNT;
        mq_model_invoke(mq_mailbox.input, mq_mailbox.output, time_layer, &timer);
        mq_mailbox.cycles_total = DWT_CYCCNT - start;
        mq_board_marker(0);
        mq_mailbox.arena_high_water_bytes = arena_high_water();
        mq_mailbox.stack_high_water_bytes = stack_high_water();
        mq_mailbox.sequence += 1u;
        mq_mailbox.state = MQ_STATE_DONE;
        log_summary();
        mq_inference_done();
    }
}
