/* AVERAGE_POOL_2D, int8 (input and output share scale and zero point). */
#include "mq_nn.h"

void mq_avg_pool2d_s8(const mq_pool_params_t *p, const int8_t *input, int8_t *output)
{
    for (int oy = 0; oy < p->out_h; ++oy) {
        const int iy0 = oy * p->stride_h - p->pad_top;
        int ky_start, ky_end;
        mq_window(iy0, p->k_h, p->in_h, &ky_start, &ky_end);
        for (int ox = 0; ox < p->out_w; ++ox) {
            const int ix0 = ox * p->stride_w - p->pad_left;
            int kx_start, kx_end;
            mq_window(ix0, p->k_w, p->in_w, &kx_start, &kx_end);
            for (int c = 0; c < p->channels; ++c) {
                int32_t acc = 0;
                int32_t count = 0;
                for (int ky = ky_start; ky < ky_end; ++ky) {
                    for (int kx = kx_start; kx < kx_end; ++kx) {
                        acc += input[((int32_t)(iy0 + ky) * p->in_w + ix0 + kx) * p->channels + c];
                        ++count;
                    }
                }
                /* round half away from zero, as the reference does */
                acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                output[((int32_t)oy * p->out_w + ox) * p->channels + c] =
                    (int8_t)mq_clamp(acc, p->act_min, p->act_max);
            }
        }
    }
}
