/*
 * Host twin: the generated model and the kernel library compiled for the
 * development machine, so bit-exactness against tflite_micro is checked on
 * thousands of images in seconds. Only this file is host-specific.
 */
#include <string.h>

#include "mq_model.h"

int mq_twin_run(const int8_t *inputs, int8_t *outputs, int count)
{
    for (int i = 0; i < count; ++i) {
        mq_model_invoke(inputs + (long)i * mq_model_info.input_bytes,
                        outputs + (long)i * mq_model_info.output_bytes, 0, 0);
    }
    return count;
}

typedef struct {
    int layer;
    int8_t *destination;
    int bytes;
} layer_capture_t;

static void capture_layer(void *context, int layer, int phase)
{
    layer_capture_t *capture = (layer_capture_t *)context;
    if (phase == MQ_LAYER_END && layer == capture->layer) {
        memcpy(capture->destination, mq_model_layer_output(layer), (size_t)capture->bytes);
    }
}

/* One inference, keeping a copy of layer `layer`'s output: to locate a mismatch. */
int mq_twin_layer(const int8_t *input, int8_t *output, int layer, int8_t *layer_out, int bytes)
{
    layer_capture_t capture = {layer, layer_out, bytes};
    return mq_model_invoke(input, output, capture_layer, &capture);
}
