/*
 * DEPTHWISE_CONV_2D, int8, per-channel weights; output channel = in channel * M + m.
 *
 * Accumulators for all channels of one output pixel live on the stack, and each
 * filter tap adds a channel-contiguous run of inputs times a channel-contiguous
 * run of weights, so the inner loop walks memory in order. Dilated or very wide
 * layers take the straightforward per-channel path.
 */
#include "mq_nn.h"

#define MQ_DEPTHWISE_MAX_CHANNELS 1024

static int8_t requantize(const mq_conv_params_t *p, int32_t acc, const int32_t *bias,
                         const int32_t *multiplier, const int32_t *shift, int oc)
{
    acc += bias ? bias[oc] : 0;
    acc = mq_multiply_by_quantized_multiplier(acc, multiplier[oc], shift[oc]);
    return (int8_t)mq_clamp(acc + p->output_offset, p->act_min, p->act_max);
}

static void depthwise_per_channel(const mq_conv_params_t *p, const int8_t *input,
                                  const int8_t *filter, const int32_t *bias,
                                  const int32_t *multiplier, const int32_t *shift, int iy0,
                                  int ix0, int8_t *out)
{
    for (int ic = 0; ic < p->in_c; ++ic) {
        for (int m = 0; m < p->depth_multiplier; ++m) {
            const int oc = ic * p->depth_multiplier + m;
            int32_t sum = 0;
            for (int ky = 0; ky < p->k_h; ++ky) {
                const int iy = iy0 + ky * p->dil_h;
                if (iy < 0 || iy >= p->in_h) {
                    continue;
                }
                for (int kx = 0; kx < p->k_w; ++kx) {
                    const int ix = ix0 + kx * p->dil_w;
                    if (ix < 0 || ix >= p->in_w) {
                        continue;
                    }
                    const int32_t x = input[((int32_t)iy * p->in_w + ix) * p->in_c + ic];
                    sum += (int32_t)filter[(ky * p->k_w + kx) * p->out_c + oc] * (x + p->input_offset);
                }
            }
            out[oc] = requantize(p, sum, bias, multiplier, shift, oc);
        }
    }
}

void mq_depthwise_conv2d_s8(const mq_conv_params_t *p, const int8_t *input,
                            const int8_t *filter, const int32_t *bias,
                            const int32_t *multiplier, const int32_t *shift, int8_t *output)
{
    int32_t acc[MQ_DEPTHWISE_MAX_CHANNELS];
    const int contiguous = p->dil_h == 1 && p->dil_w == 1 && p->out_c <= MQ_DEPTHWISE_MAX_CHANNELS;
    const int in_c = p->in_c;
    const int multiplier_m = p->depth_multiplier;
    for (int oy = 0; oy < p->out_h; ++oy) {
        const int iy0 = oy * p->stride_h - p->pad_top;
        int ky0, ky1;
        mq_window(iy0, p->k_h, p->in_h, &ky0, &ky1);
        for (int ox = 0; ox < p->out_w; ++ox) {
            const int ix0 = ox * p->stride_w - p->pad_left;
            int8_t *out = output + ((int32_t)oy * p->out_w + ox) * p->out_c;
            if (!contiguous) {
                depthwise_per_channel(p, input, filter, bias, multiplier, shift, iy0, ix0, out);
                continue;
            }
            int kx0, kx1;
            mq_window(ix0, p->k_w, p->in_w, &kx0, &kx1);
            for (int oc = 0; oc < p->out_c; ++oc) {
                acc[oc] = 0;
            }
            for (int ky = ky0; ky < ky1; ++ky) {
                for (int kx = kx0; kx < kx1; ++kx) {
                    const int8_t *x = input + ((int32_t)(iy0 + ky) * p->in_w + ix0 + kx) * in_c;
                    const int8_t *w = filter + (ky * p->k_w + kx) * p->out_c;
                    if (multiplier_m == 1) {
                        for (int c = 0; c < in_c; ++c) {
                            acc[c] += (int32_t)w[c] * ((int32_t)x[c] + p->input_offset);
                        }
                    } else {
                        for (int c = 0; c < in_c; ++c) {
                            const int32_t xv = (int32_t)x[c] + p->input_offset;
                            for (int m = 0; m < multiplier_m; ++m) {
                                acc[c * multiplier_m + m] += (int32_t)w[c * multiplier_m + m] * xv;
                            }
                        }
                    }
                }
            }
            for (int oc = 0; oc < p->out_c; ++oc) {
                out[oc] = requantize(p, acc[oc], bias, multiplier, shift, oc);
            }
        }
    }
}
