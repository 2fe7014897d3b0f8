/*
 * Fixed-point requantization, as TFLite's (non single-rounding) reference:
 * a doubling high multiply rounded to nearest, then a rounding right shift
 * that breaks ties away from zero. Right shifts of negative values are
 * arithmetic on every compiler we target (GCC on Arm and x86).
 */
#include "mq_nn.h"

int32_t mq_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;            /* the one product that overflows */
    }
    const int64_t product = (int64_t)a * (int64_t)b;
    const int64_t nudge = product >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    return (int32_t)((product + nudge) / (1LL << 31));   /* C99: truncates toward 0 */
}

int32_t mq_rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)((1LL << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

int32_t mq_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    /* wraps like the reference does; the generator keeps |x << left| in range */
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return mq_rounding_divide_by_pot(mq_saturating_rounding_doubling_high_mul(shifted, multiplier),
                                     right);
}
