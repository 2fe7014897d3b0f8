/*
 * mcuqual int8 kernel library: the operators of a full-integer TFLite model,
 * reproducing TFLite Micro's reference arithmetic bit for bit.
 *
 * Tensors are NHWC int8 with batch 1. Convolution filters are OHWI, depthwise
 * filters 1HW(C*M), fully connected weights [out][in] (TFLite's layouts, so the
 * code generator copies them unchanged). Requantization parameters are computed
 * on the host by the code generator exactly as TFLM computes them at prepare
 * time; kernels only apply them. C99, no allocation, no global state.
 */
#ifndef MQ_NN_H
#define MQ_NN_H

#include <stdint.h>
#include <string.h>
#if defined(__ARM_FEATURE_SIMD32) && !defined(MQ_PORTABLE_KERNELS)
#include <arm_acle.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- requantization (requant_s32.c) ------------------------------------- */
int32_t mq_saturating_rounding_doubling_high_mul(int32_t a, int32_t b);
int32_t mq_rounding_divide_by_pot(int32_t x, int exponent);
/* x * multiplier * 2^shift, rounded as TFLite does (shift > 0: left). */
int32_t mq_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift);

static inline int32_t mq_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* The part [*start, *end) of a k-tap window at `origin` that lies inside [0, size). */
static inline void mq_window(int origin, int k, int size, int *start, int *end)
{
    *start = origin < 0 ? -origin : 0;
    *end = k < size - origin ? k : size - origin;
}

/*
 * sum(w[i] * (x[i] + x_offset)) over n contiguous int8 pairs: the inner loop of
 * convolution and fully connected layers. On a core with the DSP extension
 * (Cortex-M4) four pairs go through two SMLADs: bytes are sign-extended to
 * 16-bit lanes with SXTB16, the offset is added lane-wise with SADD16 (x + offset
 * lies in [-255, 255], so no lane overflows) and the products summed into 32 bits
 * exactly as the scalar loop would; the result is the same integer.
 */
static inline int32_t mq_dot_offset_s8(const int8_t *x, const int8_t *w, int n, int32_t x_offset)
{
    int32_t acc = 0;
    int i = 0;
#if defined(__ARM_FEATURE_SIMD32) && !defined(MQ_PORTABLE_KERNELS)
    const uint32_t offset2 = ((uint32_t)(uint16_t)x_offset << 16) | (uint16_t)x_offset;
    for (; i + 4 <= n; i += 4) {
        uint32_t x4, w4;
        memcpy(&x4, x + i, 4);                   /* LDR: unaligned access is allowed */
        memcpy(&w4, w + i, 4);
        const int16x2_t x_even = __sadd16(__sxtb16(x4), offset2);
        const int16x2_t x_odd = __sadd16(__sxtb16((x4 >> 8) | (x4 << 24)), offset2);
        acc = __smlad(x_even, __sxtb16(w4), acc);
        acc = __smlad(x_odd, __sxtb16((w4 >> 8) | (w4 << 24)), acc);
    }
#endif
    for (; i < n; ++i) {
        acc += (int32_t)w[i] * ((int32_t)x[i] + x_offset);
    }
    return acc;
}

/* ---- shapes and parameters ---------------------------------------------- */
typedef struct {
    uint16_t in_h, in_w, in_c;
    uint16_t out_h, out_w, out_c;
    uint8_t k_h, k_w, stride_h, stride_w, dil_h, dil_w;
    uint8_t pad_top, pad_left;
    uint8_t depth_multiplier;        /* depthwise only */
    int32_t input_offset;            /* -input zero point */
    int32_t output_offset;           /* output zero point */
    int32_t act_min, act_max;
} mq_conv_params_t;

typedef struct {
    uint16_t in_features, out_features;
    int32_t input_offset, filter_offset, output_offset;
    int32_t act_min, act_max;
    uint8_t per_channel;             /* 1: one multiplier/shift per output */
} mq_fc_params_t;

typedef struct {
    uint16_t in_h, in_w, channels, out_h, out_w;
    uint8_t k_h, k_w, stride_h, stride_w, pad_top, pad_left;
    int32_t act_min, act_max;
} mq_pool_params_t;

typedef struct {
    uint16_t in_h, in_w, channels;   /* mean over H and W, per channel */
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier, shift;       /* already divided by H*W as TFLM does */
} mq_mean_params_t;

typedef struct {
    uint32_t size;                   /* elements of the output */
    uint32_t input1_inner, input2_inner; /* elements before an input repeats (broadcast) */
    int32_t input1_offset, input2_offset, output_offset;
    int32_t left_shift;
    int32_t input1_multiplier, input1_shift;
    int32_t input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} mq_add_params_t;

typedef struct {
    uint32_t size, input1_inner, input2_inner;
    int32_t input1_offset, input2_offset, output_offset;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
} mq_mul_params_t;

typedef struct {
    uint16_t rows, depth;
    int32_t input_multiplier, input_left_shift, diff_min;
} mq_softmax_params_t;

/* ---- operators (one file each) ------------------------------------------ */
void mq_conv2d_s8(const mq_conv_params_t *p, const int8_t *input, const int8_t *filter,
                  const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                  int8_t *output);
void mq_depthwise_conv2d_s8(const mq_conv_params_t *p, const int8_t *input,
                            const int8_t *filter, const int32_t *bias,
                            const int32_t *multiplier, const int32_t *shift, int8_t *output);
void mq_fully_connected_s8(const mq_fc_params_t *p, const int8_t *input, const int8_t *filter,
                           const int32_t *bias, const int32_t *multiplier,
                           const int32_t *shift, int8_t *output);
void mq_avg_pool2d_s8(const mq_pool_params_t *p, const int8_t *input, int8_t *output);
void mq_max_pool2d_s8(const mq_pool_params_t *p, const int8_t *input, int8_t *output);
void mq_mean_s8(const mq_mean_params_t *p, const int8_t *input, int8_t *output);
void mq_add_s8(const mq_add_params_t *p, const int8_t *input1, const int8_t *input2,
               int8_t *output);
void mq_mul_s8(const mq_mul_params_t *p, const int8_t *input1, const int8_t *input2,
               int8_t *output);
void mq_softmax_s8(const mq_softmax_params_t *p, const int8_t *input, int8_t *output);

#ifdef __cplusplus
}
#endif
#endif /* MQ_NN_H */
