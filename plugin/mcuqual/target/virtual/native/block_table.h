/*
 * The table of costed blocks both compiled accumulations keep (m4_cycles.c,
 * set_assoc_cycles.c): open addressing with linear probing over a power-of-two
 * number of records, each starting with its key, the block's start address and byte
 * size (size 0: an empty slot). Records are never removed one by one: a table is
 * emptied whole (code changed, or it filled up) and refilled on demand.
 *
 *     typedef struct { uint32_t address, size; int32_t cycles; } record;
 *     record table[1024];
 *     record *r = mq_table_find(table, sizeof(record), 1024, 0x08000100u, 12u);
 *     if (r == NULL) {
 *         r = mq_table_free(table, sizeof(record), 1024, 0x08000100u, 12u);
 *         r->address = 0x08000100u; r->size = 12u; r->cycles = 9;
 *     }
 */
#ifndef MQ_BLOCK_TABLE_H
#define MQ_BLOCK_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t address, size;
} mq_table_key;

static inline uint32_t mq_table_slot(uint32_t address, uint32_t size, uint32_t slots)
{
    return ((address >> 1) * 2654435761u ^ size * 40503u) & (slots - 1u);
}

static inline mq_table_key *mq_table_at(void *table, size_t record_bytes, uint32_t slot)
{
    return (mq_table_key *)(void *)((uint8_t *)table + (size_t)slot * record_bytes);
}

/* The record of (address, size), or NULL. The table must hold at least one empty slot. */
static inline void *mq_table_find(void *table, size_t record_bytes, uint32_t slots,
                                  uint32_t address, uint32_t size)
{
    uint32_t slot = mq_table_slot(address, size, slots);
    for (;;) {
        mq_table_key *key = mq_table_at(table, record_bytes, slot);
        if (key->size == 0u) {
            return NULL;
        }
        if (key->address == address && key->size == size) {
            return key;
        }
        slot = (slot + 1u) & (slots - 1u);
    }
}

/* The empty slot where (address, size), not in the table, goes. */
static inline void *mq_table_free(void *table, size_t record_bytes, uint32_t slots,
                                  uint32_t address, uint32_t size)
{
    uint32_t slot = mq_table_slot(address, size, slots);
    while (mq_table_at(table, record_bytes, slot)->size != 0u) {
        slot = (slot + 1u) & (slots - 1u);
    }
    return mq_table_at(table, record_bytes, slot);
}

#endif
