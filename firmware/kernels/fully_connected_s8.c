/* FULLY_CONNECTED, int8, per-tensor or per-channel weights (weights' zero point 0). */
#include "mq_nn.h"

void mq_fully_connected_s8(const mq_fc_params_t *p, const int8_t *input, const int8_t *filter,
                           const int32_t *bias, const int32_t *multiplier,
                           const int32_t *shift, int8_t *output)
{
    int32_t input_sum = 0;             /* for a non-zero weight offset: sum(x + io) */
    if (p->filter_offset) {
        for (int i = 0; i < p->in_features; ++i) {
            input_sum += (int32_t)input[i] + p->input_offset;
        }
    }
    for (int o = 0; o < p->out_features; ++o) {
        const int8_t *w = filter + (int32_t)o * p->in_features;
        /* sum((w + fo) * (x + io)) = sum(w (x + io)) + fo sum(x + io) */
        int32_t acc = mq_dot_offset_s8(input, w, p->in_features, p->input_offset) +
                      p->filter_offset * input_sum;
        if (bias) {
            acc += bias[o];
        }
        const int q = p->per_channel ? o : 0;
        acc = p->requant_fast ? mq_multiply_small_right(acc, multiplier[q], shift[q])
                              : mq_multiply_by_quantized_multiplier(acc, multiplier[q], shift[q]);
        acc += p->output_offset;
        output[o] = (int8_t)mq_clamp(acc, p->act_min, p->act_max);
    }
}
