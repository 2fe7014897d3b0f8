/*
 * SOFTMAX, int8 in, int8 out (scale 1/256, zero point -128), in the fixed-point
 * arithmetic TFLite's reference uses: input differences in Q5.26, exp() by a
 * Taylor polynomial on [-1/4, 0) and a barrel of exp(-2^k) factors, a Q12.19
 * sum, and a Newton-Raphson reciprocal.
 */
#include "mq_nn.h"

#define Q_ONE_F0 INT32_MAX          /* 1.0 with 0 integer bits (saturated) */
#define Q_ONE_F2 (1 << 29)          /* 1.0 with 2 integer bits */

static int32_t fp_mul(int32_t a, int32_t b)
{
    return mq_saturating_rounding_doubling_high_mul(a, b);
}

/* x * 2^exponent for exponent > 0, saturating. */
static int32_t saturating_shift_left(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)((1LL << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) for a in [-1/4, 0), a and result in Q0.31. */
static int32_t exp_on_last_quarter(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668;
    const int32_t one_third = 715827883;
    const int32_t x = a + (1 << 28);               /* expand around -1/8 */
    const int32_t x2 = fp_mul(x, x);
    const int32_t x3 = fp_mul(x2, x);
    const int32_t x4 = fp_mul(x2, x2);
    const int32_t x4_over_4 = mq_rounding_divide_by_pot(x4, 2);
    const int32_t poly = mq_rounding_divide_by_pot(fp_mul(x4_over_4 + x3, one_third) + x2, 1);
    return exp_minus_one_eighth + fp_mul(exp_minus_one_eighth, x + poly);
}

/* exp(a) for a <= 0 given in Q5.26; result in Q0.31. */
static int32_t exp_on_negative_values_q5(int32_t a)
{
    static const int32_t factors[7] = {
        1672461947, /* exp(-1/4) */
        1302514674, /* exp(-1/2) */
        790015084,  /* exp(-1) */
        290630308,  /* exp(-2) */
        39332535,   /* exp(-4) */
        720401,     /* exp(-8) */
        242,        /* exp(-16) */
    };
    const int32_t quarter = 1 << 24;
    const int32_t a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter;
    int32_t result = exp_on_last_quarter(saturating_shift_left(a_mod_quarter_minus_quarter, 5));
    const int32_t remainder = a_mod_quarter_minus_quarter - a;
    for (int k = 0; k < 7; ++k) {
        if (remainder & (1 << (24 + k))) {
            result = fp_mul(result, factors[k]);
        }
    }
    return a == 0 ? Q_ONE_F0 : result;
}

static int32_t rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    return (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
}

/* 1 / (1 + x) for x in [0, 1), Q0.31 in and out. */
static int32_t one_over_one_plus_x(int32_t x)
{
    const int32_t half_denominator = rounding_half_sum(x, Q_ONE_F0);
    const int32_t c48_over_17 = 1515870810;      /* Q2.29 */
    const int32_t c_neg32_over_17 = -1010580540; /* Q2.29 */
    int32_t estimate = c48_over_17 + fp_mul(half_denominator, c_neg32_over_17);
    for (int i = 0; i < 3; ++i) {
        const int32_t one_minus = Q_ONE_F2 - fp_mul(half_denominator, estimate);
        estimate = estimate + saturating_shift_left(fp_mul(estimate, one_minus), 2);
    }
    return saturating_shift_left(estimate, 1);
}

static int count_leading_zeros(uint32_t x)
{
    if (x == 0) {
        return 32;
    }
    int n = 0;
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

void mq_softmax_s8(const mq_softmax_params_t *p, const int8_t *input, int8_t *output)
{
    for (int r = 0; r < p->rows; ++r) {
        const int8_t *in = input + r * p->depth;
        int8_t *out = output + r * p->depth;
        int32_t max_in_row = INT8_MIN;
        for (int c = 0; c < p->depth; ++c) {
            max_in_row = in[c] > max_in_row ? in[c] : max_in_row;
        }
        int32_t sum_of_exps = 0;                 /* Q12.19 */
        for (int c = 0; c < p->depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled = fp_mul(diff * (1 << p->input_left_shift),
                                              p->input_multiplier);
                sum_of_exps += mq_rounding_divide_by_pot(exp_on_negative_values_q5(scaled), 12);
            }
        }
        const int headroom_plus_one = count_leading_zeros((uint32_t)sum_of_exps);
        const int bits_over_unit = 12 - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - (1u << 31));
        const int32_t reciprocal = one_over_one_plus_x(shifted_sum_minus_one);
        const int exponent = bits_over_unit + 31 - 8;
        for (int c = 0; c < p->depth; ++c) {
            const int32_t diff = in[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t scaled = fp_mul(diff * (1 << p->input_left_shift),
                                              p->input_multiplier);
                const int32_t e = exp_on_negative_values_q5(scaled);
                const int32_t unsat = mq_rounding_divide_by_pot(fp_mul(reciprocal, e), exponent);
                out[c] = (int8_t)mq_clamp(unsat + INT8_MIN, INT8_MIN, INT8_MAX);
            } else {
                out[c] = INT8_MIN;
            }
        }
    }
}
