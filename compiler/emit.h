/* emit.h — writing C: the Emitter object and one emitter pair per layer kind.
 *
 * The Emitter owns indentation and scopes, so emitters never count spaces:
 *     emit_open(e, "for (int oc = 0; oc < @OC; oc++) {");   // indent++
 *     emit(e, "acc[oc] = bias[oc];");
 *     emit_close(e, "oc");                                  // "}  /- oc -/", indent--
 * In every format, '@' stands for the current layer's constant prefix
 * ("CONV1_"), so `@OC` reads CONV1_OC in the generated file. */
#ifndef CNNC_EMIT_H
#define CNNC_EMIT_H
#include <stdbool.h>
#include <stddef.h>
#include "plan.h"
#include "tiles.h"

typedef struct Emitter {
    char *buf;
    size_t len, cap;
    int indent;
    int vlen;               /* floats per vector register of the machine cnnc runs on: 16 or 8 */
    bool halved16;          /* a 16-float FMA issues as two 8-float halves (AMD Zen 4), so an
                               8-float vector costs half of one: pad channels to 8, not 16 */
    const char *prefix;     /* "CONV1_" while emitting conv1 */
} Emitter;

void emit(Emitter *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void emit_open(Emitter *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void emit_close(Emitter *e, const char *what);      /* "}" with a label when what != NULL */
void emit_else(Emitter *e, const char *why);        /* "} else {" with a comment when why != NULL */
void emit_blank(Emitter *e);
void emit_text(Emitter *e, const char *text);       /* verbatim, no '@' expansion */

/* Loop over the batch, one image per OpenMP thread: images are independent. */
void emit_batch_loop(Emitter *e);
void emit_grad_chunks_add(Emitter *e, const char *dst, const char *part, const char *n, const char *stride);
/* The standard signatures; uses_in/uses_out say whether the body reads them. */
void emit_forward_open(Emitter *e, const PlanLayer *pl, bool uses_in);
/* A forward with nothing to do: another layer's forward does its work. */
void emit_forward_empty(Emitter *e, const PlanLayer *pl);
void emit_backward_open(Emitter *e, const PlanLayer *pl, bool uses_in, bool uses_out);
/* A backward with nothing to do: another layer's backward does its work, and din is dout. */
void emit_backward_empty(Emitter *e, const PlanLayer *pl);

/* A float as a C literal: 1 -> "1.0f", 1e-08 -> "1e-08f".  buf holds 32 bytes. */
typedef struct FloatText { char s[32]; } FloatText;
FloatText c_float(double v);

/* Emits <model>.c and <model>.h into *c_text and *h_text (arena strings). */
void emit_model(Arena *a, const Plan *p, const char **c_text, const char **h_text);

/* Opens the part of a backward function that computes din.  Inner layers
 * always do; the first layer only when the caller asked for dLoss/dx
 * (c->dinput != NULL), so it opens `if (din != NULL) {`.  Close with
 * emit_din_close. */
void emit_din_open(Emitter *e, const PlanLayer *pl);
void emit_din_close(Emitter *e, const PlanLayer *pl);

/* Shared by the conv emitters: emit_conv_tiled.c's register-tiled kernels use
 * emit_conv.c's plain dL/din (when no vector form fits) and dL/dbias. */
void emit_conv_din_generic(Emitter *e, const PlanLayer *pl);
void emit_bias_grad_shared(Emitter *e, const Layer *l);
void emit_conv_tile_constants(Emitter *e, const PlanLayer *pl);
/* emit_conv_tiled.c's pieces the Winograd kernels share: a zero-margined copy
 * of an image, and the mask of a relu before the conv on dL/din (see there). */
void emit_conv_copy_into_margins(Emitter *e, const char *dst, const char *src, const char *h, const char *w,
                                 const char *ch, const char *bh, const char *bw, const char *top, const char *left);
void emit_conv_relu_mask(Emitter *e, const PlanLayer *pl, const char *dst, const char *ix, const char *count);
void emit_conv_relu_mask_image(Emitter *e, const PlanLayer *pl);
/* A margin-free conv's dL/dweight: the thread's zero-padded copy img of image `have`, declared, and
 * made by the thread's first task of image b. */
void emit_conv_thread_copy_buffer(Emitter *e);
void emit_conv_thread_copy(Emitter *e);
/* A conv forward's `for b` over the batch, opened, each image first copied into its padded buffer. */
void emit_conv_forward_batch_loop(Emitter *e, const PlanLayer *pl);
/* emit_conv_winograd.c: 3×3 stride-1 convs by Winograd F(2×2,3×3), where plan.c
 * found the shape fits and the register tiles are wide enough. */
bool emit_conv_winograd(const Emitter *e, const PlanLayer *pl);
void emit_conv_winograd_constants(Emitter *e, const PlanLayer *pl);
void emit_conv_winograd_forward_kernels(Emitter *e, const PlanLayer *pl);
void emit_conv_winograd_din_kernels(Emitter *e, const PlanLayer *pl);
void emit_conv_winograd_forward(Emitter *e, const PlanLayer *pl);
void emit_conv_winograd_din(Emitter *e, const PlanLayer *pl);
void emit_conv_winograd_weight_grad_constants(Emitter *e, const PlanLayer *pl);
void emit_conv_winograd_weight_grad_kernels(Emitter *e, const PlanLayer *pl);
void emit_conv_winograd_weight_grad(Emitter *e, const PlanLayer *pl);
void emit_conv_winograd_backward_open(Emitter *e, const PlanLayer *pl);
/* Accumulator tile rows that fit the vector registers beside nv vectors, at most limit (tiles.c). */
int emit_tile_size(const Emitter *e, long nv, long limit);
/* The channel vectors (a divisor of nv, at most `most`) one register tile covers, so that its rows stay
 * wide (tiles.c explains). */
int emit_vector_group(const Emitter *e, long nv, long most, long limit);
/* dL/dweight's tile rows for `rows` weight rows beside nv gradient vectors: up to 12, split evenly
 * (emit_conv_tiled.c explains). */
int emit_weight_grad_rows(const Emitter *e, long nv, long rows);
void emit_fc_tile_constants(Emitter *e, const PlanLayer *pl);
/* The register tile's zeroing and rank-1 update (emit_conv_tiled.c explains). */
void emit_tile_zero(Emitter *e, const char *vtype, const char *rows, const char *nv);
void emit_tile_begin(Emitter *e, const char *vtype, const char *capacity, const char *rows, const char *nv);
void emit_tile_update(Emitter *e, const char *vtype, const char *nv, const char *vector, const char *rows,
                      const char *scalar);
/* The same into the tile `acc` names (an expression: "pair[h]"). */
void emit_tile_update_into(Emitter *e, const char *acc, const char *vtype, const char *nv, const char *vector,
                           const char *rows, const char *scalar);

/* One pair per layer kind, referenced from the table in layers.c. */
void emit_conv_forward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_conv_backward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_deconv_forward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_deconv_backward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_maxpool_forward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_maxpool_backward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_avgpool_forward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_avgpool_backward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_gap_forward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_gap_backward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_unpool_forward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_unpool_backward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_fc_forward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_fc_backward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_flatten_forward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_flatten_backward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_activation_forward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_activation_backward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_softmax_forward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_softmax_backward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_dropout_forward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_dropout_backward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_batchnorm_forward(Emitter *e, const Plan *p, const PlanLayer *pl);
void emit_batchnorm_backward(Emitter *e, const Plan *p, const PlanLayer *pl);
#endif
