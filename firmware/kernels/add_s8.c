/*
 * ADD, int8: both inputs are rescaled to a common scale with 20 bits of
 * headroom, summed, and requantized to the output. An input shorter than the
 * output repeats (broadcast along the innermost dimensions).
 */
#include "mq_nn.h"

void mq_add_s8(const mq_add_params_t *p, const int8_t *input1, const int8_t *input2,
               int8_t *output)
{
    uint32_t j1 = 0;                       /* i modulo each input's length, without a divide */
    uint32_t j2 = 0;
    for (uint32_t i = 0; i < p->size; ++i) {
        const int32_t a = (int32_t)input1[j1] + p->input1_offset;
        const int32_t b = (int32_t)input2[j2] + p->input2_offset;
        j1 = j1 + 1 == p->input1_inner ? 0 : j1 + 1;
        j2 = j2 + 1 == p->input2_inner ? 0 : j2 + 1;
        const int32_t a_scaled = mq_multiply_by_quantized_multiplier(
            a * (1 << p->left_shift), p->input1_multiplier, p->input1_shift);
        const int32_t b_scaled = mq_multiply_by_quantized_multiplier(
            b * (1 << p->left_shift), p->input2_multiplier, p->input2_shift);
        int32_t out = mq_multiply_by_quantized_multiplier(a_scaled + b_scaled,
                                                          p->output_multiplier, p->output_shift);
        out += p->output_offset;
        output[i] = (int8_t)mq_clamp(out, p->act_min, p->act_max);
    }
}
