/*
 * Per-block accumulation, compiled, for the cycle models of cores with set-associative
 * caches: the Cortex-M33 (cycles_m33.CortexM33Model: the STM32U5 ICACHE, which also
 * serves flash data reads; taken-branch extras) and the Cortex-M7 (cycles_m7.CortexM7Model:
 * L1 I- and D-caches behind the AXI bus; 2-bit branch prediction). Built on first use by
 * mcuqual.target.virtual.cycles_native; the rules are the Python models' on_block and
 * on_data_read, step for step, and the tests compare both on whole inferences
 * (tests/test_cycle_models_compiled.py).
 *
 * Lifecycle: as m4_cycles.c. Python zeroes one mq_sa_state (mq_sa_state_bytes()), sets the
 * settings and both caches' geometry (mq_sa_cache), registers mq_sa_on_block as a
 * UC_HOOK_BLOCK and mq_sa_on_read as a UC_HOOK_MEM_READ over each timed data range; a block
 * not in the table calls `miss`, which stores it with mq_sa_put.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "block_table.h"

#define MQ_SA_TABLE 16384u             /* block slots, a power of two */
#define MQ_SA_TABLE_FULL 12288u
#define MQ_SA_SITES 16384u             /* branch predictor entries, a power of two */
#define MQ_SA_SITES_FULL 12288u
#define MQ_SA_CACHE_LINES 8192u        /* sets x ways, per cache, at most */
#define MQ_SA_WAYS 8u

enum { BRANCH_NONE = 0, BRANCH_TAKEN_EXTRA = 1, BRANCH_DIRECT = 2, BRANCH_CONDITIONAL = 3,
       BRANCH_INDIRECT = 4 };

typedef struct {
    uint32_t address, size;            /* key (size 0: empty) */
    int32_t cost[3];                   /* nominal, low, high when it falls through */
    int32_t taken[3];                  /* BRANCH_TAKEN_EXTRA: added when it is taken */
    uint32_t fallthrough;              /* the address after it; a predictor's site */
    uint32_t first_line, line_count;   /* instruction-cache lines (count 0: not timed) */
    uint32_t branch;                   /* BRANCH_* */
} mq_sa_block;

typedef struct {
    uint32_t site;                     /* a branch's fallthrough address (0: empty) */
    int32_t counter;                   /* 2-bit: >= 2 predicts taken */
    uint32_t target;                   /* an indirect branch's last target */
    int32_t has_target;
} mq_sa_site;

typedef struct {
    uint32_t sets, ways, shift, pad;
    uint32_t line[MQ_SA_CACHE_LINES];  /* set s, way w at s * ways + w */
    uint64_t stamp[MQ_SA_CACHE_LINES];
    uint8_t valid[MQ_SA_CACHE_LINES];
} mq_sa_cache;

typedef void (*mq_sa_miss_fn)(uint64_t address, uint32_t size);
typedef int (*mq_uc_stop_fn)(void *uc);

typedef struct {
    uint64_t cycles[3];                /* nominal, low, high totals (read by Python) */
    uint64_t stop_at_cycles;
    int32_t wait_states;               /* flash wait states, kept current */
    int32_t miss_multiplier;           /* a line miss: multiplier x wait states + add */
    int32_t miss_add[3];
    int32_t data_cache;                /* data reads go through cache 0 (I) or 1 (D) */
    int32_t taken_cost[3];             /* predictor: a predicted taken branch */
    int32_t mispredict_cost[3];        /* predictor: any misprediction */
    uint32_t flash_start, flash_end;   /* data reads outside pay no wait states */
    int32_t missing;                   /* a block `miss` did not store, or sites overflowed */
    int32_t pad;
    mq_sa_miss_fn miss;
    mq_uc_stop_fn emu_stop;
    int32_t previous_valid, previous_branch;
    int32_t previous_taken[3];
    uint32_t previous_fallthrough, pad2;
    uint64_t clock;
    uint32_t block_count, site_count;
    mq_sa_cache cache[2];
    mq_sa_block table[MQ_SA_TABLE];
    mq_sa_site sites[MQ_SA_SITES];
} mq_sa_state;

size_t mq_sa_state_bytes(void) { return sizeof(mq_sa_state); }

size_t mq_sa_offset(int field)
{
    switch (field) {
    case 0: return offsetof(mq_sa_state, cycles);
    case 1: return offsetof(mq_sa_state, stop_at_cycles);
    case 2: return offsetof(mq_sa_state, wait_states);
    case 3: return offsetof(mq_sa_state, miss_add);
    case 4: return offsetof(mq_sa_state, taken_cost);
    case 5: return offsetof(mq_sa_state, flash_start);
    case 6: return offsetof(mq_sa_state, missing);
    case 7: return offsetof(mq_sa_state, miss);
    case 8: return offsetof(mq_sa_state, emu_stop);
    default: return (size_t)-1;
    }
}

/* Set cache `which`'s geometry and empty it; 0 when it does not fit the arrays. */
int mq_sa_cache_geometry(mq_sa_state *s, int which, uint32_t sets, uint32_t ways,
                         uint32_t line_bytes)
{
    mq_sa_cache *c = &s->cache[which];
    uint32_t shift = 0u;
    if (which < 0 || which > 1 || sets == 0u || ways == 0u || ways > MQ_SA_WAYS ||
        sets * ways > MQ_SA_CACHE_LINES || line_bytes == 0u ||
        (line_bytes & (line_bytes - 1u)) != 0u) {
        return 0;
    }
    while ((1u << shift) < line_bytes) {
        shift++;
    }
    c->sets = sets;
    c->ways = ways;
    c->shift = shift;
    memset(c->valid, 0, sizeof(c->valid));
    return 1;
}

static mq_sa_block *find(mq_sa_state *s, uint32_t address, uint32_t size)
{
    return (mq_sa_block *)mq_table_find(s->table, sizeof(mq_sa_block), MQ_SA_TABLE, address,
                                        size);
}

void mq_sa_forget_all(mq_sa_state *s)
{
    memset(s->table, 0, sizeof(s->table));
    s->block_count = 0u;
}

/* Store a block's costs (the Python model's block record, see the struct). */
void mq_sa_put(mq_sa_state *s, uint32_t address, uint32_t size, int32_t nominal, int32_t low,
               int32_t high, int32_t taken_nominal, int32_t taken_low, int32_t taken_high,
               uint32_t branch, uint32_t fallthrough, uint32_t first_line, uint32_t line_count)
{
    mq_sa_block *b;
    if (size == 0u || find(s, address, size) != NULL) {
        return;
    }
    if (s->block_count >= MQ_SA_TABLE_FULL) {
        mq_sa_forget_all(s);
    }
    b = (mq_sa_block *)mq_table_free(s->table, sizeof(mq_sa_block), MQ_SA_TABLE, address, size);
    b->address = address;
    b->size = size;
    b->cost[0] = nominal;
    b->cost[1] = low;
    b->cost[2] = high;
    b->taken[0] = taken_nominal;
    b->taken[1] = taken_low;
    b->taken[2] = taken_high;
    b->branch = branch;
    b->fallthrough = fallthrough;
    b->first_line = first_line;
    b->line_count = line_count;
    s->block_count++;
}

/* cycles_common.LruCache.touch: 1 when `line` was present; either way it is now the most
 * recently used line of its set (a full set loses its least recently used). */
static int touch(mq_sa_state *s, mq_sa_cache *c, uint32_t line)
{
    uint32_t base = (line % c->sets) * c->ways, w, free_way = c->ways, oldest = c->ways;
    s->clock++;
    for (w = 0u; w < c->ways; w++) {
        uint32_t i = base + w;
        if (!c->valid[i]) {
            if (free_way == c->ways) {
                free_way = w;
            }
        } else if (c->line[i] == line) {
            c->stamp[i] = s->clock;
            return 1;
        } else if (oldest == c->ways || c->stamp[i] < c->stamp[base + oldest]) {
            oldest = w;
        }
    }
    w = free_way != c->ways ? free_way : oldest;
    c->valid[base + w] = 1u;
    c->line[base + w] = line;
    c->stamp[base + w] = s->clock;
    return 0;
}

static void add(mq_sa_state *s, const int32_t cost[3])
{
    s->cycles[0] += (uint64_t)(int64_t)cost[0];
    s->cycles[1] += (uint64_t)(int64_t)cost[1];
    s->cycles[2] += (uint64_t)(int64_t)cost[2];
}

static void add_miss(mq_sa_state *s, int32_t wait_states)
{
    int32_t cost[3];
    int k;
    for (k = 0; k < 3; k++) {
        cost[k] = s->miss_multiplier * wait_states + s->miss_add[k];
    }
    add(s, cost);
}

/* cycles_m7.CortexM7Model._branch_outcome: the 2-bit counter per conditional branch site
 * (initially 1, weakly not taken), the last target per indirect branch site. */
static mq_sa_site *site_of(mq_sa_state *s, uint32_t site)
{
    uint32_t i = mq_table_slot(site, 0u, MQ_SA_SITES);
    for (;;) {
        mq_sa_site *e = &s->sites[i];
        if (e->site == site) {
            return e;
        }
        if (e->site == 0u) {
            if (s->site_count >= MQ_SA_SITES_FULL) {
                return NULL;
            }
            e->site = site;
            e->counter = 1;
            e->has_target = 0;
            s->site_count++;
            return e;
        }
        i = (i + 1u) & (MQ_SA_SITES - 1u);
    }
}

static int branch_outcome(mq_sa_state *s, uint32_t address, void *uc)
{
    int taken = address != s->previous_fallthrough, right;
    mq_sa_site *e;
    if (s->previous_branch == BRANCH_DIRECT) {
        add(s, s->taken_cost);
        return 1;
    }
    e = site_of(s, s->previous_fallthrough);
    if (e == NULL) {
        s->missing = 2;
        s->emu_stop(uc);
        return 0;
    }
    if (s->previous_branch == BRANCH_CONDITIONAL) {
        right = (e->counter >= 2) == taken;
        e->counter = taken ? (e->counter < 3 ? e->counter + 1 : 3)
                           : (e->counter > 0 ? e->counter - 1 : 0);
    } else {
        right = e->has_target && e->target == address;
        e->target = address;
        e->has_target = 1;
    }
    if (!right) {
        add(s, s->mispredict_cost);
    } else if (taken) {
        add(s, s->taken_cost);
    }
    return 1;
}

void mq_sa_on_block(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    mq_sa_state *s = (mq_sa_state *)user_data;
    mq_sa_block *b;
    uint32_t line;
    if (s->cycles[0] >= s->stop_at_cycles) {      /* slices end on block boundaries */
        s->emu_stop(uc);
        return;
    }
    b = find(s, (uint32_t)address, size);
    if (b == NULL) {
        s->miss(address, size);
        b = find(s, (uint32_t)address, size);
        if (b == NULL) {
            s->missing = 1;
            s->emu_stop(uc);
            return;
        }
    }
    if (s->previous_valid) {
        if (s->previous_branch == BRANCH_TAKEN_EXTRA) {
            if ((uint32_t)address != s->previous_fallthrough) {
                add(s, s->previous_taken);
            }
        } else if (s->previous_branch != BRANCH_NONE &&
                   !branch_outcome(s, (uint32_t)address, uc)) {
            return;
        }
    }
    for (line = 0u; line < b->line_count; line++) {
        if (!touch(s, &s->cache[0], b->first_line + line)) {
            add_miss(s, s->wait_states);
        }
    }
    add(s, b->cost);
    s->previous_valid = 1;
    s->previous_branch = (int32_t)b->branch;
    s->previous_taken[0] = b->taken[0];
    s->previous_taken[1] = b->taken[1];
    s->previous_taken[2] = b->taken[2];
    s->previous_fallthrough = b->fallthrough;
}

/* A timed data read: through the instruction cache (M33's ICACHE) or the data cache (M7);
 * a miss outside flash pays no wait states. */
void mq_sa_on_read(void *uc, int type, uint64_t address, int size, int64_t value,
                   void *user_data)
{
    mq_sa_state *s = (mq_sa_state *)user_data;
    mq_sa_cache *c = &s->cache[s->data_cache];
    uint32_t a = (uint32_t)address;
    (void)uc;
    (void)type;
    (void)size;
    (void)value;
    if (!touch(s, c, a >> c->shift)) {
        add_miss(s, (a >= s->flash_start && a < s->flash_end) ? s->wait_states : 0);
    }
}
