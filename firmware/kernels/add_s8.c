/*
 * ADD, int8: both inputs are rescaled to a common scale with 20 bits of
 * headroom, summed, and requantized to the output. An input shorter than the
 * output repeats (broadcast along the innermost dimensions).
 *
 * The fast path (p->fast, set by the code generator when it holds; codegen/params.py,
 * add_fast): TFLite scales each input by at most 1/2 (its scale over twice the larger
 * one), so (x + offset) * 2^20 and both rescaled inputs stay below 2^28 in magnitude
 * and their sum below 2^29. Every doubling high multiply is then one SMMULR of twice
 * its operand (mq_doubling_high_mul_small), and each rounding divide, its exponent
 * fixed for the whole tensor, an add of the rounding constant, an add of the sign
 * correction and a shift: the reference's values, about a quarter of its cycles.
 */
#include "mq_nn.h"

/* x / 2^e rounded half away from zero, with round = 2^(e-1) (0 for e = 0) and
 * negative = -1 (0 for e = 0): mq_rounding_divide_by_pot's value. */
static MQ_ALWAYS_INLINE int32_t divide_rounded(int32_t x, int32_t round, int32_t negative, int e)
{
    return (x + round + ((x >> 31) & negative)) >> e;
}

static void add_fast(const mq_add_params_t *p, const int8_t *input1, const int8_t *input2,
                     int8_t *output)
{
    const int e1 = -p->input1_shift, e2 = -p->input2_shift, eo = -p->output_shift;
    const int32_t round1 = e1 ? (int32_t)(1u << (e1 - 1)) : 0, negative1 = e1 ? -1 : 0;
    const int32_t round2 = e2 ? (int32_t)(1u << (e2 - 1)) : 0, negative2 = e2 ? -1 : 0;
    const int32_t round_out = (int32_t)(1u << (eo - 1));     /* eo >= 1 */
    const int32_t m1 = p->input1_multiplier, m2 = p->input2_multiplier;
    const int32_t mo = p->output_multiplier;
    /* 2 (x + offset) 2^left = x 2^(left+1) + offset 2^(left+1): one shifted add each */
    const int left = p->left_shift + 1;
    const int32_t offset1 = p->input1_offset * (1 << left), offset2 = p->input2_offset * (1 << left);
    const int32_t output_offset = p->output_offset, lo = p->act_min, hi = p->act_max;
    const int8_t *const end = output + p->size;
    while (output < end) {
        const int32_t a = mq_smmulr(offset1 + (int32_t)*input1++ * (1 << left), m1);
        const int32_t b = mq_smmulr(offset2 + (int32_t)*input2++ * (1 << left), m2);
        const int32_t sum = divide_rounded(a, round1, negative1, e1) +
                            divide_rounded(b, round2, negative2, e2);
        const int32_t out = divide_rounded(mq_doubling_high_mul_small(sum, mo), round_out, -1, eo);
        *output++ = (int8_t)mq_clamp(out + output_offset, lo, hi);
    }
}

void mq_add_s8(const mq_add_params_t *p, const int8_t *input1, const int8_t *input2,
               int8_t *output)
{
    if (p->fast && p->input1_inner == p->size && p->input2_inner == p->size) {
        add_fast(p, input1, input2, output);
        return;
    }
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
