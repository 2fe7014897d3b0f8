/*
 * The interface every generated model implements: one call runs one inference
 * from an int8 input to an int8 output through a static arena. A hook, when
 * given, is called before and after every layer (the firmware uses it to read
 * the DWT cycle counter; the host twin passes NULL).
 */
#ifndef MQ_MODEL_H
#define MQ_MODEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { MQ_LAYER_BEGIN = 0, MQ_LAYER_END = 1 };

typedef void (*mq_layer_hook_t)(void *context, int layer, int phase);

typedef struct {
    const char *name;
    uint32_t input_bytes;
    uint32_t output_bytes;
    uint32_t arena_bytes;
    uint32_t layers;
    const char *const *layer_names;
} mq_model_info_t;

extern const mq_model_info_t mq_model_info;
extern int8_t mq_model_arena[];

/* Runs one inference; returns 0. `input` and `output` may live anywhere. */
int mq_model_invoke(const int8_t *input, int8_t *output, mq_layer_hook_t hook, void *context);

/* Where layer `layer`'s output lies in the arena (valid until overwritten). */
const int8_t *mq_model_layer_output(int layer);

#ifdef __cplusplus
}
#endif
#endif /* MQ_MODEL_H */
