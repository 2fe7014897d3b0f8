/* FULLY_CONNECTED, int8, per-tensor or per-channel weights. */
#include "mq_nn.h"

void mq_fully_connected_s8(const mq_fc_params_t *p, const int8_t *input, const int8_t *filter,
                           const int32_t *bias, const int32_t *multiplier,
                           const int32_t *shift, int8_t *output)
{
    for (int o = 0; o < p->out_features; ++o) {
        const int8_t *w = filter + (int32_t)o * p->in_features;
        int32_t acc = 0;
        for (int i = 0; i < p->in_features; ++i) {
            acc += ((int32_t)w[i] + p->filter_offset) * ((int32_t)input[i] + p->input_offset);
        }
        if (bias) {
            acc += bias[o];
        }
        const int q = p->per_channel ? o : 0;
        acc = mq_multiply_by_quantized_multiplier(acc, multiplier[q], shift[q]);
        acc += p->output_offset;
        output[o] = (int8_t)mq_clamp(acc, p->act_min, p->act_max);
    }
}
