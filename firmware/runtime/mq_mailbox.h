/*
 * The mailbox: the one structure the host (through the debug probe) and the
 * firmware share. The host finds it by its ELF symbol `mq_mailbox`, checks
 * magic and version, writes an input and sets `command`; the firmware runs one
 * inference and publishes output, cycles and high-water marks, then bumps
 * `sequence` (the host waits for that, not for `state`, which returns to IDLE
 * at once). The header is self-describing: the offsets of the variable parts
 * are written at boot, and `magic` is written last.
 */
#ifndef MQ_MAILBOX_H
#define MQ_MAILBOX_H

#include <stdint.h>

#include "mq_model_config.h"

#define MQ_MAILBOX_MAGIC   0x424D514Du   /* "MQMB" in memory order */
#define MQ_MAILBOX_VERSION 1u
#define MQ_MAX_LAYERS      64u

enum mq_state {
    MQ_STATE_BOOT = 0,
    MQ_STATE_IDLE = 1,      /* ready for a command */
    MQ_STATE_BUSY = 2,
    MQ_STATE_DONE = 3,      /* output valid for `sequence` */
    MQ_STATE_FAULT = 4,     /* a fault handler ran; see fault_* */
    MQ_STATE_ERROR = 5,     /* see error_code */
};

enum mq_command { MQ_COMMAND_NONE = 0, MQ_COMMAND_RUN = 1 };

enum mq_error { MQ_ERROR_NONE = 0, MQ_ERROR_TOO_MANY_LAYERS = 1 };

typedef struct {
    uint32_t magic;
    uint32_t version;
    volatile uint32_t state;
    volatile uint32_t command;
    volatile uint32_t sequence;            /* completed inferences */
    volatile uint32_t error_code;
    uint32_t input_bytes;
    uint32_t output_bytes;
    uint32_t layers;
    uint32_t arena_bytes;
    volatile uint32_t cycles_total;        /* DWT cycles of the last inference */
    volatile uint32_t arena_high_water_bytes;
    volatile uint32_t stack_high_water_bytes;
    uint32_t stack_bytes;
    uint32_t core_clock_hz;
    uint32_t input_offset;                 /* byte offsets inside this struct */
    uint32_t output_offset;
    uint32_t layer_cycles_offset;
    volatile uint32_t fault_pc, fault_lr, fault_sp, fault_xpsr;
    volatile uint32_t fault_cfsr, fault_hfsr, fault_mmfar, fault_bfar;
    volatile uint32_t layer_cycles[MQ_MAX_LAYERS];
    int8_t input[MQ_MODEL_INPUT_BYTES];
    int8_t output[MQ_MODEL_OUTPUT_BYTES];
} mq_mailbox_t;

extern mq_mailbox_t mq_mailbox;

#endif /* MQ_MAILBOX_H */
