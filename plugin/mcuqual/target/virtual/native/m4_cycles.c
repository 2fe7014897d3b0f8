/*
 * The Cortex-M4 cycle model's per-block accumulation, compiled (host C99, built on first
 * use by mcuqual.target.virtual.cycles_native).
 *
 * The Python model (cycles.py, CycleModel) costs every translated block once from its
 * disassembly by the Cortex-M4 TRM's Table 3-1; what is left per executed block is adding
 * those costs, charging a taken branch's extra cycles at the next block, and the STM32L4+
 * ART accelerator (32 instruction lines and 8 data lines, LRU). A Python block hook spends
 * about 1.6 us on that; this file does the same arithmetic inside unicorn's hook call.
 * The rules are CycleModel.on_block and CycleModel.on_data_read, step for step: the tests
 * compare both on whole inferences (tests/test_cycle_models.py).
 *
 * Lifecycle: Python allocates one mq_m4_state (zeroed, mq_m4_state_bytes()), fills its
 * settings (wait states, refill range, cache enables, the block-miss callback, unicorn's
 * uc_emu_stop), registers mq_m4_on_block as a UC_HOOK_BLOCK and mq_m4_on_read as a
 * UC_HOOK_MEM_READ over the flash window, both with the state as user data. A block not in
 * the table calls `miss`, which costs it in Python and stores it with mq_m4_put.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "block_table.h"

#define MQ_M4_TABLE 16384u            /* block slots, a power of two */
#define MQ_M4_TABLE_FULL 12288u       /* emptied (and refilled on demand) past 3/4 */
#define MQ_M4_ICACHE_LINES 32u        /* ART instruction cache: 32 lines of 32 bytes */
#define MQ_M4_DCACHE_LINES 8u         /* ART data cache: 8 lines of 32 bytes */
#define MQ_M4_LINE_SHIFT 5u

typedef struct {
    uint32_t address;                 /* key: start address and byte size (0: empty) */
    uint32_t size;
    int32_t nominal, low, high;       /* the block when its final branch falls through */
    int32_t taken_extra;              /* added to all three when it is taken */
    uint32_t fallthrough;             /* the address after the block */
    uint32_t first_line, line_count;  /* flash lines the code spans (count 0: not flash) */
    uint8_t refill;                   /* a taken final branch also pays P at its target */
    uint8_t ends_in_branch;
    uint8_t wide_unaligned;           /* starts with a 32-bit instruction at 2 mod 4 */
    uint8_t pad;
} mq_m4_block;

typedef void (*mq_m4_miss_fn)(uint64_t address, uint32_t size);
typedef int (*mq_uc_stop_fn)(void *uc);

typedef struct {
    uint64_t cycles, cycles_low, cycles_high;   /* read by Python (DWT, slices, bands) */
    uint64_t stop_at_cycles;                    /* the block hook stops emulation here */
    int32_t wait_states;                        /* FLASH_ACR.LATENCY, kept current */
    int32_t refill_nominal, refill_low, refill_high;   /* P: nominal, Table 3-1's range */
    int32_t icache_enabled, dcache_enabled;
    int32_t missing;                            /* a block `miss` did not store */
    int32_t pad;
    mq_m4_miss_fn miss;
    mq_uc_stop_fn emu_stop;
    /* the previous block, by value (the table may be emptied under it) */
    int32_t previous_valid, previous_branch, previous_refill, previous_taken_extra;
    uint32_t previous_fallthrough, pad2;
    uint64_t clock;                             /* LRU stamps */
    uint32_t icache_line[MQ_M4_ICACHE_LINES];
    uint64_t icache_stamp[MQ_M4_ICACHE_LINES];
    uint32_t icache_count;
    uint32_t dcache_line[MQ_M4_DCACHE_LINES];
    uint32_t dcache_words[MQ_M4_DCACHE_LINES];  /* bit i: 64-bit word i of the line read */
    uint64_t dcache_stamp[MQ_M4_DCACHE_LINES];
    uint32_t dcache_count;
    uint32_t block_count;
    mq_m4_block table[MQ_M4_TABLE];
} mq_m4_state;

size_t mq_m4_state_bytes(void) { return sizeof(mq_m4_state); }

size_t mq_m4_offset(int field)
{
    switch (field) {
    case 0: return offsetof(mq_m4_state, cycles);
    case 1: return offsetof(mq_m4_state, cycles_low);
    case 2: return offsetof(mq_m4_state, cycles_high);
    case 3: return offsetof(mq_m4_state, stop_at_cycles);
    case 4: return offsetof(mq_m4_state, wait_states);
    case 5: return offsetof(mq_m4_state, refill_nominal);
    case 6: return offsetof(mq_m4_state, icache_enabled);
    case 7: return offsetof(mq_m4_state, missing);
    case 8: return offsetof(mq_m4_state, miss);
    case 9: return offsetof(mq_m4_state, emu_stop);
    default: return (size_t)-1;
    }
}

static mq_m4_block *find(mq_m4_state *s, uint32_t address, uint32_t size)
{
    return (mq_m4_block *)mq_table_find(s->table, sizeof(mq_m4_block), MQ_M4_TABLE, address,
                                        size);
}

/* Forget every stored block (code changed, or the table filled up). */
void mq_m4_forget_all(mq_m4_state *s)
{
    memset(s->table, 0, sizeof(s->table));
    s->block_count = 0u;
}

/* Store a block's costs (the fields of cycles.BlockCost); called from `miss`. */
void mq_m4_put(mq_m4_state *s, uint32_t address, uint32_t size, int32_t nominal, int32_t low,
               int32_t high, int32_t taken_extra, int32_t refill, int32_t ends_in_branch,
               uint32_t fallthrough, uint32_t first_line, uint32_t line_count,
               int32_t wide_unaligned)
{
    mq_m4_block *b;
    if (size == 0u || find(s, address, size) != NULL) {
        return;
    }
    if (s->block_count >= MQ_M4_TABLE_FULL) {
        mq_m4_forget_all(s);
    }
    b = (mq_m4_block *)mq_table_free(s->table, sizeof(mq_m4_block), MQ_M4_TABLE, address, size);
    b->address = address;
    b->size = size;
    b->nominal = nominal;
    b->low = low;
    b->high = high;
    b->taken_extra = taken_extra;
    b->fallthrough = fallthrough;
    b->first_line = first_line;
    b->line_count = line_count;
    b->refill = (uint8_t)(refill != 0);
    b->ends_in_branch = (uint8_t)(ends_in_branch != 0);
    b->wide_unaligned = (uint8_t)(wide_unaligned != 0);
    s->block_count++;
}

/* The ART caches are emptied when disabled (FLASH_ACR.ICEN/DCEN). */
void mq_m4_clear_icache(mq_m4_state *s) { s->icache_count = 0u; }
void mq_m4_clear_dcache(mq_m4_state *s) { s->dcache_count = 0u; }

/* LRU touch of an instruction line: 1 on a hit; a miss fills it, evicting the oldest. */
static int touch_icache(mq_m4_state *s, uint32_t line)
{
    uint32_t i, oldest = 0u;
    s->clock++;
    for (i = 0u; i < s->icache_count; i++) {
        if (s->icache_line[i] == line) {
            s->icache_stamp[i] = s->clock;
            return 1;
        }
        if (s->icache_stamp[i] < s->icache_stamp[oldest]) {
            oldest = i;
        }
    }
    if (s->icache_count < MQ_M4_ICACHE_LINES) {
        oldest = s->icache_count++;
    }
    s->icache_line[oldest] = line;
    s->icache_stamp[oldest] = s->clock;
    return 0;
}

void mq_m4_on_block(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    mq_m4_state *s = (mq_m4_state *)user_data;
    mq_m4_block *b;
    int64_t extra = 0, extra_low = 0, extra_high = 0, wait = 0;
    uint32_t line;
    if (s->cycles >= s->stop_at_cycles) {     /* slices end on block boundaries */
        s->emu_stop(uc);
        return;
    }
    b = find(s, (uint32_t)address, size);
    if (b == NULL) {
        s->miss(address, size);
        b = find(s, (uint32_t)address, size);
        if (b == NULL) {                      /* the Python side failed: stop, it reports */
            s->missing = 1;
            s->emu_stop(uc);
            return;
        }
    }
    if (s->previous_valid && s->previous_branch && (uint32_t)address != s->previous_fallthrough) {
        extra = extra_low = extra_high = s->previous_taken_extra;
        if (s->previous_refill) {
            extra += s->refill_nominal + b->wide_unaligned;
            extra_low += s->refill_low;
            extra_high += s->refill_high;
        }
    }
    for (line = 0u; line < b->line_count; line++) {
        if (!(s->icache_enabled && touch_icache(s, b->first_line + line))) {
            wait += s->wait_states;
        }
    }
    s->cycles += (uint64_t)(b->nominal + extra + wait);
    s->cycles_low += (uint64_t)(b->low + extra_low + wait);
    s->cycles_high += (uint64_t)(b->high + extra_high + wait);
    s->previous_valid = 1;
    s->previous_branch = b->ends_in_branch;
    s->previous_refill = b->refill;
    s->previous_taken_extra = b->taken_extra;
    s->previous_fallthrough = b->fallthrough;
}

/* A data read from flash through the ART data cache: a line is a hit once any of it was
 * read; the high end pays a wait for each 64-bit word on its first use (the fill order is
 * not published). */
void mq_m4_on_read(void *uc, int type, uint64_t address, int size, int64_t value,
                   void *user_data)
{
    mq_m4_state *s = (mq_m4_state *)user_data;
    uint32_t line = (uint32_t)(address >> MQ_M4_LINE_SHIFT);
    uint32_t word = 1u << ((address >> 3) & 3u);
    uint32_t i, oldest = 0u;
    (void)uc;
    (void)type;
    (void)size;
    (void)value;
    if (s->dcache_enabled) {
        s->clock++;
        for (i = 0u; i < s->dcache_count; i++) {
            if (s->dcache_line[i] == line) {
                s->dcache_stamp[i] = s->clock;
                if (!(s->dcache_words[i] & word)) {
                    s->dcache_words[i] |= word;
                    s->cycles_high += (uint64_t)s->wait_states;
                }
                return;
            }
            if (s->dcache_stamp[i] < s->dcache_stamp[oldest]) {
                oldest = i;
            }
        }
    }
    s->cycles += (uint64_t)s->wait_states;
    s->cycles_low += (uint64_t)s->wait_states;
    s->cycles_high += (uint64_t)s->wait_states;
    if (s->dcache_enabled) {
        if (s->dcache_count < MQ_M4_DCACHE_LINES) {
            oldest = s->dcache_count++;
        }
        s->dcache_line[oldest] = line;
        s->dcache_words[oldest] = word;
        s->dcache_stamp[oldest] = s->clock;
    }
}
