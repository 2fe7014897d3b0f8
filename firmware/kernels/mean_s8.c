/* MEAN over height and width (global average pooling), int8 in and out. */
#include "mq_nn.h"

void mq_mean_s8(const mq_mean_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t count = (int32_t)p->in_h * p->in_w;
    for (int c = 0; c < p->channels; ++c) {
        int32_t sum = 0;
        for (int32_t i = 0; i < count; ++i) {
            sum += input[i * p->channels + c];
        }
        sum -= p->input_zero_point * count;
        int32_t out = mq_multiply_by_quantized_multiplier(sum, p->multiplier, p->shift);
        out += p->output_zero_point;
        output[c] = (int8_t)mq_clamp(out, INT8_MIN, INT8_MAX);
    }
}
