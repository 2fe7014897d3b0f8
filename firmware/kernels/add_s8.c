/*
 * ADD, int8: both inputs are rescaled to a common scale with 20 bits of
 * headroom, summed, and requantized to the output. An input shorter than the
 * output repeats (broadcast along the innermost dimensions). The output may be the
 * same memory as a full-size input (the code generator writes the sum in place of an
 * input that dies here): every element is read before it is written.
 *
 * The fast path (p->fast, set by the code generator when it holds: codegen/params.py,
 * add_fast, and no input broadcast): an int8 input takes 256 values, so each input's
 * rescaled value (x + offset) * 2^20 * m / 2^31 / 2^e, rounded as the reference does,
 * is computed once per value into a table in the scratch (MQ_ADD_SCRATCH_BYTES: two
 * tables of 256 int32), and an element costs two byte loads, two table loads and the
 * output's requantization. TFLite scales each input by at most 1/2 (its scale over
 * twice the larger one), so both rescaled inputs stay below 2^28 in magnitude and
 * their sum below 2^29: the output is requantized with mq_requant_folded (one SMMULR
 * and a rounding shift with the output offset in its rounding term; the output always
 * right-shifts, add_fast checks it and the folded term's range) and clamped with SSAT
 * when the activation range is all of int8.
 */
#include "mq_nn.h"

/* table[u] = the rescaled value of the int8 input (int8_t)u, u = 0..255 */
static void rescale_table(int32_t offset, int left_shift, int32_t multiplier, int shift,
                          int32_t *table)
{
    for (int u = 0; u < 256; ++u) {
        const int32_t x = ((int32_t)(int8_t)(uint8_t)u + offset) * (1 << left_shift);
        table[u] = mq_multiply_by_quantized_multiplier(x, multiplier, shift);
    }
}

static void add_fast(const mq_add_params_t *p, const uint8_t *input1, const uint8_t *input2,
                     int8_t *output, int32_t *tables)
{
    int32_t *const table1 = tables, *const table2 = tables + 256;
    rescale_table(p->input1_offset, p->left_shift, p->input1_multiplier, p->input1_shift, table1);
    rescale_table(p->input2_offset, p->left_shift, p->input2_multiplier, p->input2_shift, table2);
    const int32_t mo = p->output_multiplier;
    const int exponent = -p->output_shift;                    /* >= 1 */
    const int32_t rounding = mq_folded_rounding(2 * p->output_offset + 1, exponent);
    const int32_t lo = p->act_min, hi = p->act_max;
    const int8_t *const end = output + p->size;
    if (lo == -128 && hi == 127) {                            /* SSAT for the clamp */
        /* two elements a pass: one loop test for both */
        for (const int8_t *const pairs_end = output + (p->size & ~1u); output < pairs_end;
             output += 2, input1 += 2, input2 += 2) {
            const int32_t sum0 = table1[input1[0]] + table2[input2[0]];
            const int32_t sum1 = table1[input1[1]] + table2[input2[1]];
            output[0] = mq_saturate_s8(mq_requant_folded(sum0, mo, rounding, exponent), lo, hi, 1);
            output[1] = mq_saturate_s8(mq_requant_folded(sum1, mo, rounding, exponent), lo, hi, 1);
        }
        if (output < end) {
            const int32_t sum = table1[*input1] + table2[*input2];
            *output = mq_saturate_s8(mq_requant_folded(sum, mo, rounding, exponent), lo, hi, 1);
        }
        return;
    }
    while (output < end) {
        const int32_t sum = table1[*input1++] + table2[*input2++];
        *output++ = mq_saturate_s8(mq_requant_folded(sum, mo, rounding, exponent), lo, hi, 0);
    }
}

void mq_add_s8(const mq_add_params_t *p, const int8_t *input1, const int8_t *input2,
               int8_t *output, int8_t *scratch)
{
    if (p->fast) {
        add_fast(p, (const uint8_t *)input1, (const uint8_t *)input2, output,
                 (int32_t *)(void *)scratch);
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
