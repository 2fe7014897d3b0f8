/*
 * CONV_2D, int8 activations, per-channel int8 weights, int32 bias.
 *
 * For each output pixel the taps inside the input form, per filter row, one
 * contiguous run of input and weight bytes (when dilation is 1), so the work is
 * one dot product per row; padded taps are skipped, as the reference skips them.
 */
#include "mq_nn.h"

static int32_t accumulate_dilated(const mq_conv_params_t *p, const int8_t *input,
                                  const int8_t *f, int iy0, int ix0)
{
    int32_t acc = 0;
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
            acc += mq_dot_offset_s8(input + ((int32_t)iy * p->in_w + ix) * p->in_c,
                                    f + (ky * p->k_w + kx) * p->in_c, p->in_c, p->input_offset);
        }
    }
    return acc;
}

void mq_conv2d_s8(const mq_conv_params_t *p, const int8_t *input, const int8_t *filter,
                  const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                  int8_t *output)
{
    const int in_c = p->in_c;
    const int dilated = p->dil_h != 1 || p->dil_w != 1;
    const int32_t filter_size = (int32_t)p->k_h * p->k_w * in_c;
    int8_t *out = output;
    for (int oy = 0; oy < p->out_h; ++oy) {
        const int iy0 = oy * p->stride_h - p->pad_top;
        int ky0, ky1;
        mq_window(iy0, p->k_h, p->in_h, &ky0, &ky1);
        for (int ox = 0; ox < p->out_w; ++ox) {
            const int ix0 = ox * p->stride_w - p->pad_left;
            int kx0, kx1;
            mq_window(ix0, p->k_w, p->in_w, &kx0, &kx1);
            const int run = (kx1 - kx0) * in_c;
            for (int oc = 0; oc < p->out_c; ++oc) {
                const int8_t *f = filter + oc * filter_size;
                int32_t acc = 0;
                if (dilated) {
                    acc = accumulate_dilated(p, input, f, iy0, ix0);
                } else {
                    for (int ky = ky0; ky < ky1; ++ky) {
                        acc += mq_dot_offset_s8(
                            input + ((int32_t)(iy0 + ky) * p->in_w + ix0 + kx0) * in_c,
                            f + (ky * p->k_w + kx0) * in_c, run, p->input_offset);
                    }
                }
                if (bias) {
                    acc += bias[oc];
                }
                acc = mq_multiply_by_quantized_multiplier(acc, multiplier[oc], shift[oc]);
                acc += p->output_offset;
                *out++ = (int8_t)mq_clamp(acc, p->act_min, p->act_max);
            }
        }
    }
}
