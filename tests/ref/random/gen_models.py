#!/usr/bin/python3
"""gen_models.py -- random valid .cnn models for the PyTorch conformance test.

  gen_models.py SEED N OUTDIR [--first K] [--size B] [--screen F] [--cnnc build/cnnc]
                [--no-ref-check] [--quiet]

Writes OUTDIR/rs<SEED>_<i>.cnn for i = K..K+N-1.  Model i depends only on (SEED, i)
(and on how many candidates were rejected before it), so one model can be
regenerated without the others.  The generator tracks shapes and follows
cnnc's rules (docs/language.md), so nearly every candidate is valid by
construction; each one is still run through `cnnc check` and through the
reference's own parser (tests/ref/cnnmodel.py), and a rejected candidate is
replaced by a fresh one.  The rejection count and reasons are printed (and
written to OUTDIR/rejected.txt); a model cnnc accepts but the reference refuses
is a disagreement between the two readings of the language and is reported as
such.  Last, a candidate must pass the conditioning screen (screen(): no
gradient that is zero but for rounding, and float32 PyTorch within --screen of
test_ref's tolerance against float64, on the weights and batch of B examples
that reference.py suite will use, and on two copies of them nudged by a float32
ulp at random: other draws of the rounding another float32 program makes), else
float32 arithmetic itself could not match the float64 reference (see
refcompare.py and README.md).

Coverage (each decided at random per model):
  conv      kernel 1..5 (rectangular too), stride 1..3 (S or SxS), pad 0..k-1
            (P or PxP), pad=same where valid, pad=valid, dilation 1..3,
            bias=no, flip; output channels sometimes 8 or 16 (the vector-tiled
            kernels), convs after other layers (input-gradient kernels)
  deconv    stride, pad, outpad < stride, dilation
  pools     pool / maxpool / avgpool with pad <= K/2 and stride != K,
            rectangular windows, globalavgpool
  unpool    pool ... unpool pairs with shape-keeping layers between them,
            nested pairs, overlapping windows
  fc/dense, flatten (also followed by spatial layers: 1x1xN), relu, sigmoid,
            tanh, leakyrelu [A], softmax (mid-network too), batchnorm (after a
            bias-free conv/fc, or after an activation; momentum/eps options)
  losses    crossentropy (trailing softmax folded sometimes), mse, bce (ends
            with sigmoid or softmax)
  optimizer sgd / sgd momentum / momentum / adam with options, or the default
No dropout: its masks cannot match PyTorch.

Numerical traps the generator avoids on purpose (they make both sides compute
rounding noise, which no tolerance can compare): a bias (conv/fc/deconv bias or
a batchnorm's beta) that reaches a batchnorm through only affine or
shift-equivariant layers (its true gradient is 0), softmax over one channel
(constant 1), crossentropy on one output (constant loss 0).
"""

import argparse
import os
import random
import subprocess
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))

MAX_SIDE = 18        # activation sides stay small (inputs <= 16x16)
MAX_ACT = 2048       # values per image in any activation
MAX_OUTPUTS = 256    # the loss's outputs


def conv_out(n, k, s, p, d):
    span = d * (k - 1) + 1
    if span > n + 2 * p:
        return 0
    return (n + 2 * p - span) // s + 1


def deconv_out(n, k, s, p, d, op):
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def reads_input(n, k, s, p, d, out):
    """Does some tap of some output position land inside the n input rows?"""
    return any(0 <= y * s - p + i * d < n for y in range(max(out, 0)) for i in range(k))


def same_pad(n, k, s, d):
    """cnnc's pad=same: None when the total padding is odd (refused)."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    return None if total % 2 else total // 2


def pair_text(a, b, force_pair=False):
    return f"{a}x{b}" if (a != b or force_pair) else f"{a}"


class Shape:
    def __init__(self, h, w, c, flat=False):
        self.h, self.w, self.c, self.flat = h, w, c, flat

    @property
    def size(self):
        return self.h * self.w * self.c

    def spatial(self):
        return Shape(1, 1, self.size) if self.flat else Shape(self.h, self.w, self.c)

    def key(self):
        s = self.spatial()
        return (s.h, s.w, s.c)

    def __str__(self):
        return str(self.size) if self.flat else f"{self.h}x{self.w}x{self.c}"


class Gen:
    """One random model: statements appended while the shape is tracked."""

    def __init__(self, rng, winograd=0.15):
        self.r = rng
        self.winograd = winograd  # chance of a Winograd-shaped conv where the sides are even
        self.lines = []          # statements (strings)
        self.covers = []         # what this model exercises (for its header)
        self.shape = None
        # A bias (conv/deconv/fc bias, batchnorm beta) that reaches here through only affine or
        # shift-equivariant layers: None, or how many distinct shifts (channels) it has per example.
        # A batchnorm there, or a softmax / cross-entropy over a single shift, makes its true
        # gradient 0, and both sides would compare rounding noise.
        self.shift = None
        # Features that are the same constant for every example (an unpool's zeros, then
        # an activation or a bias): an fc reading them has weights whose gradient acts as
        # a bias gradient.
        self.holes = False
        self.adam = True         # Adam turns any noise-level gradient into a +-lr step
        self.last_kind = None
        self.nlayers = 0

    # ---- helpers
    def chance(self, p):
        return self.r.random() < p

    def pick(self, *items):
        return self.r.choice(items)

    def wpick(self, pairs):
        """[(weight, item), ...] -> item"""
        total = sum(w for w, _ in pairs)
        x = self.r.random() * total
        for w, item in pairs:
            x -= w
            if x < 0:
                return item
        return pairs[-1][1]

    def channels(self):
        c = self.shape.spatial().c if self.shape else 0
        same = 3 if c in (8, 16, 24, 32, 48, 64) else 0     # whole vectors in and out: the tiled dL/din kernel
        return self.wpick([(6, self.r.randint(1, 4)), (3, self.r.randint(5, 8)),
                           (2, 8), (2, 16), (0.4, 24), (0.4, 32), (0.2, 48), (0.2, 64), (same, c)])

    def add(self, text, kind, shape, cover=None):
        self.lines.append(text)
        self.shape = shape
        self.last_kind = kind
        self.nlayers += 1
        if cover:
            self.covers.append(cover)

    def fits(self, s):
        return (0 < s.h <= MAX_SIDE and 0 < s.w <= MAX_SIDE and s.size <= MAX_ACT)

    # ---- layers
    def conv(self, n=None, keep_shape=False, bias=None, cover_tag="conv"):
        """A conv on the current shape; keep_shape: stride 1, output == input (n must equal c)."""
        s = self.shape.spatial()
        if (n is None and not keep_shape and s.h % 2 == 0 and s.w % 2 == 0 and
                self.chance(min(1.0, 4 * self.winograd) if s.c % 16 == 0 else self.winograd) and self.winograd_conv(s, bias, cover_tag)):
            return True
        for _ in range(40):
            rect = self.chance(0.3)
            kh = self.r.randint(1, 5)
            kw = self.r.randint(1, 5) if rect else kh
            dil = self.wpick([(6, (1, 1)), (2, (2, 2)), (1, (3, 3)), (1, (self.r.randint(1, 3), self.r.randint(1, 3)))])
            opts = []
            if keep_shape:
                # odd effective kernel at stride 1: pad=same or its explicit value
                if (dil[0] * (kh - 1)) % 2 or (dil[1] * (kw - 1)) % 2:
                    continue
                ph, pw = dil[0] * (kh - 1) // 2, dil[1] * (kw - 1) // 2
                stride = (1, 1)
                if self.chance(0.5):
                    opts.append("pad=same")
                elif ph or pw:
                    opts.append(f"pad={pair_text(ph, pw, self.chance(0.2))}")
                elif self.chance(0.2):
                    opts.append("pad=valid")
            else:
                stride = self.wpick([(5, (1, 1)), (3, (2, 2)), (1, (3, 3)),
                                     (1, (self.r.randint(1, 3), self.r.randint(1, 3)))])
                mode = self.wpick([(3, "none"), (4, "num"), (2, "same"), (0.5, "valid")])
                ph = pw = 0
                if mode == "same":
                    ph = same_pad(s.h, kh, stride[0], dil[0])
                    pw = same_pad(s.w, kw, stride[1], dil[1])
                    if ph is None or pw is None:
                        mode = "num"
                        ph = pw = 0
                    else:
                        opts.append("pad=same")
                if mode == "num":
                    ph = self.r.randint(0, kh - 1)
                    pw = self.r.randint(0, kw - 1) if (rect or self.chance(0.2)) else min(ph, kw - 1)
                    if self.chance(0.04):   # rows of padding only: the output there is the bias
                        ph, pw = kh, kw
                    if ph or pw:
                        opts.append(f"pad={pair_text(ph, pw)}")
                    else:
                        opts.append("pad=0")
                if mode == "valid":
                    opts.append("pad=valid")
            if stride != (1, 1) or self.chance(0.1):
                opts.append(f"stride={pair_text(*stride, force_pair=self.chance(0.3))}")
            if dil != (1, 1) or self.chance(0.05):
                opts.append(f"dilation={pair_text(*dil, force_pair=self.chance(0.2))}")
            oh = conv_out(s.h, kh, stride[0], ph, dil[0])
            ow = conv_out(s.w, kw, stride[1], pw, dil[1])
            if (not reads_input(s.h, kh, stride[0], ph, dil[0], oh) or
                    not reads_input(s.w, kw, stride[1], pw, dil[1], ow)) and not self.chance(0.03):
                continue     # every tap in the padding: the output is the bias, no gradient flows back
            cout = n if n is not None else self.channels()
            out = Shape(oh, ow, cout)
            if oh <= 0 or ow <= 0 or not self.fits(out):
                continue
            if keep_shape and (oh, ow) != (s.h, s.w):
                continue
            if s.h * s.w * 0 + oh * ow * cout * kh * kw * s.c > 60000:   # keep the MACs small
                continue
            if bias is None:
                bias = not self.chance(0.2)
            if not bias:
                opts.append(self.pick("bias=no", "bias=false", "bias=0"))
            elif self.chance(0.05):
                opts.append("bias=yes")
            if self.chance(0.2):
                opts.append("flip")
            self.r.shuffle(opts)
            tags = [cover_tag, f"k{kh}x{kw}"]
            if stride != (1, 1):
                tags.append(f"s{stride[0]}x{stride[1]}")
            if dil != (1, 1):
                tags.append(f"d{dil[0]}x{dil[1]}")
            tags += [o for o in opts if o.startswith("pad=") or o == "flip" or o.startswith("bias")]
            if cout % 8 == 0:
                tags.append(f"cout{cout}")
            if self.nlayers:
                tags.append("not-first")
            self.add(" ".join([f"conv {kh}x{kw}x{cout}"] + opts), "conv", out, " ".join(tags))
            if bias or self.shift is not None:   # a bias-free conv passes an earlier shift on (away from padding)
                self.shift = cout
            if kh * kw > 1:
                self.holes = False
            return True
        return False

    def winograd_conv(self, s, bias, cover_tag):
        """3x3, stride 1, padding 1 on channels in whole 16-float vectors and even sides: the
        shape cnnc computes by Winograd F(2x2,3x3) (emit_conv_winograd.c), which the general
        conv above reaches too rarely."""
        cin = s.c if s.c % 16 == 0 else 16    # else a 1x1 conv to 16 channels first
        for cout in self.r.sample([16, 32, 48], 3):
            out = Shape(s.h, s.w, cout)
            if self.fits(out) and self.fits(Shape(s.h, s.w, cin)) and s.h * s.w * cout * 9 * cin <= 150000:
                break
        else:
            return False
        if cin != s.c:
            self.add("conv 1x1x16", "conv", Shape(s.h, s.w, 16), "conv k1x1 cout16" + (" not-first" if self.nlayers else ""))
            self.shift = 16
        if bias is None:
            bias = not self.chance(0.2)
        opts = [self.pick("pad=1", "pad=same", "pad=1x1")] + ([] if bias else ["bias=no"])
        tags = [cover_tag, "winograd", "k3x3", f"cout{cout}"] + opts[1:] + (["not-first"] if self.nlayers else [])
        self.add(" ".join([f"conv 3x3x{cout}"] + opts), "conv", out, " ".join(tags))
        if bias or self.shift is not None:
            self.shift = cout
        self.holes = False
        return True

    def deconv(self, n=None, keep_shape=False, bias=None):
        s = self.shape.spatial()
        for _ in range(40):
            kh = self.r.randint(1, 4)
            kw = kh if self.chance(0.7) else self.r.randint(1, 4)
            if keep_shape:
                d = (1, 1)
                if kh % 2 == 0 or kw % 2 == 0:
                    continue
                stride, p, op = (1, 1), ((kh - 1) // 2, (kw - 1) // 2), (0, 0)
            else:
                stride = self.wpick([(3, (1, 1)), (3, (2, 2)), (1, (3, 3)), (1, (self.r.randint(1, 3), self.r.randint(1, 3)))])
                d = self.wpick([(6, (1, 1)), (1, (2, 2)), (0.5, (1, 2))])
                p = (self.r.randint(0, kh - 1), self.r.randint(0, kw - 1)) if self.chance(0.6) else (0, 0)
                if self.chance(0.1):    # more than D(K-1): PyTorch crops the output further
                    p = (d[0] * (kh - 1) + self.r.randint(0, 2), d[1] * (kw - 1) + self.r.randint(0, 2))
                if self.chance(0.5) and p[0] != p[1]:
                    p = (p[0], min(p[0], kw - 1))
                op = tuple(self.r.randint(0, max(stride[i], d[i]) - 1) if self.chance(0.5) else 0 for i in range(2))
            oh = deconv_out(s.h, kh, stride[0], p[0], d[0], op[0])
            ow = deconv_out(s.w, kw, stride[1], p[1], d[1], op[1])
            cout = n if n is not None else self.channels()
            out = Shape(oh, ow, cout)
            if oh <= 0 or ow <= 0 or not self.fits(out):
                continue
            if keep_shape and (oh, ow) != (s.h, s.w):
                continue
            if s.h * s.w * s.c * cout * kh * kw > 60000:
                continue
            opts = []
            if stride != (1, 1):
                opts.append(f"stride={pair_text(*stride)}")
            if p != (0, 0):
                opts.append(f"pad={pair_text(*p)}")
            if op != (0, 0):
                opts.append(f"outpad={pair_text(*op)}")
            if d != (1, 1):
                opts.append(f"dilation={pair_text(*d)}")
            if bias is None:
                bias = not self.chance(0.2)
            if not bias:
                opts.append("bias=no")
            self.r.shuffle(opts)
            self.add(" ".join([f"deconv {kh}x{kw}x{cout}"] + opts), "deconv", out,
                     " ".join(["deconv", f"k{kh}x{kw}"] + opts))
            if bias or self.shift is not None:
                self.shift = cout
            self.holes = False
            return True
        return False

    def pool(self, kind=None, keep_shape=False):
        """Max or average pool; returns the pool's statement index or None."""
        s = self.shape.spatial()
        kind = kind or self.wpick([(3, "pool"), (1, "maxpool"), (2, "avgpool")])
        for _ in range(40):
            if keep_shape:
                k = self.pick(1, 3, 5) if min(s.h, s.w) >= 1 else 1
                kh = kw = k
                st = (1, 1)
                p = (k // 2, k // 2)
            else:
                kh = self.wpick([(2, 1), (6, 2), (4, 3), (1, 4)])
                kw = kh if self.chance(0.8) else self.r.randint(1, 4)
                st = (kh, kw) if self.chance(0.5) else self.wpick(
                    [(3, (1, 1)), (3, (2, 2)), (1, (3, 3)), (1, (self.r.randint(1, 3), self.r.randint(1, 3)))])
                p = (self.r.randint(0, kh // 2), self.r.randint(0, kw // 2)) if self.chance(0.4) else (0, 0)
            if kh > s.h + 2 * p[0] or kw > s.w + 2 * p[1]:
                continue
            oh, ow = conv_out(s.h, kh, st[0], p[0], 1), conv_out(s.w, kw, st[1], p[1], 1)
            out = Shape(oh, ow, s.c)
            if oh <= 0 or ow <= 0 or not self.fits(out):
                continue
            if keep_shape and (oh, ow) != (s.h, s.w):
                continue
            opts = []
            if st != (kh, kw) or self.chance(0.1):
                opts.append(f"stride={pair_text(*st)}")
            if p != (0, 0) or self.chance(0.05):
                opts.append(f"pad={pair_text(*p)}")
            self.r.shuffle(opts)
            self.add(" ".join([f"{kind} {pair_text(kh, kw)}"] + opts), kind, out,
                     " ".join([kind, f"k{kh}x{kw}"] + opts))
            # max and average pools commute with a per-channel shift (avg only away from padding):
            # an earlier bias stays "seen through" for batchnorm
            if kh * kw > 1:
                self.holes = False
            return len(self.lines) - 1
        return None

    def activation(self, allow_softmax=True):
        s = self.shape
        kinds = [(4, "relu"), (2, "sigmoid"), (2, "tanh"), (2, "leakyrelu")]
        chan = s.size if s.flat else s.c
        if allow_softmax and chan > 1 and self.shift != 1:
            kinds.append((1.2, "softmax"))
        k = self.wpick(kinds)
        text = k
        if k == "leakyrelu":
            text = self.wpick([(2, "leakyrelu"), (3, f"leakyrelu {self.pick(0.1, 0.2, 0.3, 0.05, 0.5, 1, 0)}")])
        self.add(text, k, s, "softmax-mid" if k == "softmax" else None)
        # relu and leakyrelu are affine where every example is on one side, so under Adam a
        # shift may still reach a batchnorm through them; slope 1 is the identity
        if text != "leakyrelu 1" and not (self.adam and k in ("relu", "leakyrelu")):
            self.shift = None
        return True

    def batchnorm(self):
        if self.shift is not None:
            return False
        opts = []
        if self.chance(0.3):
            opts.append(f"momentum={self.pick(0.2, 0.5, 0.01, 0.9, 1, 0)}")
        if self.chance(0.3):
            opts.append(f"eps={self.pick('1e-3', '0.01', '1e-4', '0.1')}")
        self.add(" ".join(["batchnorm"] + opts), "batchnorm", self.shape,
                 "batchnorm-" + ("fc" if self.shape.flat else "conv") + ("" if not opts else " " + " ".join(opts)))
        self.shift = self.shape.size if self.shape.flat else self.shape.c     # its beta
        return True

    def fc(self, n=None, bias=None):
        n = n if n is not None else self.wpick([(5, self.r.randint(2, 12)), (1, 16), (1, self.r.randint(1, 32))])
        if self.shape.size * n > 40000:
            n = max(1, 40000 // self.shape.size)
        if bias is None:
            bias = not self.chance(0.2)
        word = "dense" if self.chance(0.15) else "fc"
        text = f"{word} {n}" + ("" if bias else " bias=no")
        self.add(text, "fc", Shape(1, 1, n, flat=True), "fc" + ("" if bias else " bias=no") +
                 (" spatial-in" if not self.shape.flat and self.shape.h * self.shape.w > 1 else ""))
        if bias or self.shift is not None or self.holes:
            self.shift = n
        self.holes = False
        return True

    def flatten(self):
        self.add("flatten", "flatten", Shape(1, 1, self.shape.size, flat=True),
                 "flatten" + ("" if self.shape.h * self.shape.w == 1 else " of-image"))
        return True

    def gap(self):
        s = self.shape.spatial()
        self.add("globalavgpool", "globalavgpool", Shape(1, 1, s.c), "globalavgpool")
        self.holes = False
        return True

    # ---- a pool ... unpool pair
    def pair(self, depth):
        s0 = self.shape.spatial()
        if s0.h < 2 and s0.w < 2 and not self.chance(0.2):
            return False
        saved = (len(self.lines), len(self.covers), self.shape, self.shift, self.holes, self.last_kind, self.nlayers)
        kind = self.pick("pool", "maxpool")
        idx = self.pool(kind=kind, keep_shape=self.chance(0.1))
        if idx is None:
            return False
        inner = self.shape.spatial()
        self.covers[-1] = "unpool-pair " + self.covers[-1]
        for _ in range(self.wpick([(2, 0), (4, 1), (3, 2), (1, 3)])):
            self.keep_shape_layer(depth + 1)
        if self.shape.key() != inner.key():
            # something changed the shape: undo the pair
            n, nc, self.shape, self.shift, self.holes, self.last_kind, self.nlayers = saved
            del self.lines[n:], self.covers[nc:]
            return False
        self.add("unpool", "unpool", s0, "unpool" + (" nested" if depth else ""))
        self.holes = True
        return True

    def keep_shape_layer(self, depth):
        s = self.shape.spatial()
        c = s.c
        opts = [(3, "act"), (1.5, "bn"), (2, "conv"), (1, "deconv"), (1, "avgpool")]
        if depth < 2:
            opts.append((1.5, "pair"))
        if s.h == 1 and s.w == 1:
            opts += [(1, "fc"), (0.5, "flatten"), (0.5, "gap")]
        what = self.wpick(opts)
        if what == "act":
            return self.activation()
        if what == "bn":
            if self.shift is not None:
                return self.activation()
            return self.batchnorm()
        if what == "conv":
            bias = None
            if self.chance(0.3) and self.shift is None:
                ok = self.conv(n=c, keep_shape=True, bias=False)
                return ok and self.batchnorm()
            return self.conv(n=c, keep_shape=True, bias=bias)
        if what == "deconv":
            return self.deconv(n=c, keep_shape=True)
        if what == "avgpool":
            return self.pool(kind="avgpool", keep_shape=True) is not None
        if what == "pair":
            return self.pair(depth)
        if what == "fc":
            return self.fc(n=c)
        if what == "flatten":
            return self.flatten()
        if what == "gap":
            return self.gap()
        return False

    # ---- a whole model
    def model(self):
        r = self.r
        self.opt = self.wpick([(2, None), (2, "sgd"), (1, "sgdm"), (2, "momentum"), (3, "adam")])
        self.adam = self.opt in (None, "adam")
        h = self.wpick([(1, r.randint(1, 4)), (6, r.randint(5, 12)), (2, r.randint(13, 16))])
        w = h if self.chance(0.7) else self.wpick([(1, r.randint(1, 4)), (6, r.randint(5, 12)), (2, r.randint(13, 16))])
        c = self.wpick([(4, 1), (3, 2), (3, 3), (1, 4), (0.7, 8), (0.6, 16)])
        header_lines = []
        if self.chance(0.1):
            header_lines.append(f"model rnd_{r.randint(0, 9999)}")
        header_lines.append(f"input {h}x{w}" if c == 1 and self.chance(0.4) else f"input {h}x{w}x{c}")
        self.shape = Shape(h, w, c)
        target = self.wpick([(1, 1), (3, r.randint(2, 4)), (4, r.randint(5, 7)), (3, r.randint(8, 10))])
        guard = 0
        while self.nlayers < target and guard < 60:
            guard += 1
            s = self.shape
            choices = []
            if not s.flat:
                choices += [(6, "conv"), (2, "convbn"), (1.5, "deconv"), (2, "pool"), (1.6, "pair"),
                            (0.6, "gap"), (0.8, "flatten")]
            else:
                choices += [(1.2, "conv"), (0.6, "convbn"), (0.6, "deconv")]   # a flat vector seen as 1x1xN
            choices += [(2, "fc"), (1, "fcbn"), (4 if self.last_kind not in (None, "relu", "sigmoid", "tanh", "leakyrelu", "softmax") else 0.5, "act"),
                        (0.8, "bn")]
            what = self.wpick(choices)
            if what == "conv":
                self.conv()
            elif what == "convbn":
                if self.conv(bias=False):
                    self.batchnorm()
            elif what == "deconv":
                self.deconv()
            elif what == "pool":
                self.pool()
            elif what == "pair":
                self.pair(0)
            elif what == "gap":
                self.gap()
            elif what == "flatten":
                self.flatten()
            elif what == "fc":
                self.fc()
            elif what == "fcbn":
                self.fc(bias=False) and self.batchnorm()
            elif what == "act":
                self.activation()
            elif what == "bn":
                self.batchnorm()
        # ---- loss and output
        loss = self.wpick([(5, "crossentropy"), (2.5, "mse"), (2.5, "bce")])
        if self.shape.size > MAX_OUTPUTS or (loss == "crossentropy" and self.shape.size < 2):
            self.fc(n=r.randint(2, 10))
        chan = self.shape.size if self.shape.flat else self.shape.c
        if self.shift == 1:
            # one shift over every output: softmax and cross-entropy would not see it
            if loss == "crossentropy" or self.chance(0.5):
                self.add(self.pick("tanh", "sigmoid"), "act", self.shape)
                self.shift = None
        if chan < 2 or self.shift == 1:
            softmax_ok = False
        else:
            softmax_ok = True
        if loss == "bce":
            if self.last_kind not in ("sigmoid", "softmax"):
                if softmax_ok and self.chance(0.25):
                    self.add("softmax", "softmax", self.shape, "bce-softmax")
                else:
                    self.add("sigmoid", "sigmoid", self.shape)
        elif loss == "crossentropy" and self.last_kind != "softmax" and softmax_ok and self.chance(0.25):
            self.add("softmax", "softmax", self.shape, "softmax-folded")
        elif loss == "mse" and self.last_kind not in ("softmax", "sigmoid") and softmax_ok and self.chance(0.15):
            self.add("softmax", "softmax", self.shape, "mse-softmax")
        settings = []
        if loss != "crossentropy" or self.chance(0.2):
            settings.append(f"loss {loss}")
        opt = self.opt
        if opt == "sgd":
            settings.append("optimizer sgd" + (f" lr={self.pick(0.01, 0.05, 0.1, 0.002)}" if self.chance(0.8) else ""))
        elif opt == "sgdm":
            settings.append(f"optimizer sgd lr={self.pick(0.01, 0.05, 0.02)} momentum={self.pick(0.5, 0.9, 0.99, 0)}")
        elif opt == "momentum":
            o = "optimizer momentum"
            if self.chance(0.7):
                o += f" lr={self.pick(0.01, 0.05, 0.003)}"
            if self.chance(0.5):
                o += f" momentum={self.pick(0.5, 0.8, 0.95)}"
            settings.append(o)
        elif opt == "adam":
            o = "optimizer adam"
            for k, vals in (("lr", (0.001, 0.01, 0.005, 0.0003)), ("beta1", (0.8, 0.9, 0.5)),
                            ("beta2", (0.99, 0.999, 0.9)), ("eps", ("1e-8", "1e-6", "1e-4"))):
                if self.chance(0.4):
                    o += f" {k}={self.pick(*vals)}"
            settings.append(o)
        if self.chance(0.15):
            settings.append(f"batch {self.pick(1, 2, 4, 8, 16, 64)}")   # the trace's batch differs
        if self.chance(0.1):
            settings.append(f"epochs {self.pick(1, 2, 5)}")
        self.covers.append(f"loss-{loss}" + (f" opt-{opt}" if opt else ""))
        return header_lines, settings

    def text(self, title):
        header_lines, settings = self.model()
        # statements: mostly one per line, sometimes several joined with ';'
        body, cur = [], []
        for ln in self.lines:
            cur.append(ln)
            if not self.chance(0.3):
                body.append("; ".join(cur))
                cur = []
        if cur:
            body.append("; ".join(cur))
        covers = sorted(set(self.covers))
        out = [f"# {title}; covers: {', '.join(covers)}"] + header_lines + body + settings
        return "\n".join(out) + "\n"


SCREEN = 0.25
SCREEN_SAMPLES = 3     # PyTorch's float32 trace and two from ulp-nudged arrays (refcompare.conditioning)


def screen(model, size=4):
    """float32 PyTorch against float64 PyTorch on the suite's weights and batch
    (reference.py suite: seed 1, batch seed 2, SIZE examples, 3 steps), also from
    those arrays nudged by an ulp: the worst fraction of test_ref's tolerance over
    SCREEN_SAMPLES traces, and the array (refcompare.py)."""
    import reference
    import refcompare
    weights = reference.make_weights(model, 1)
    reference.randomize_bn(weights, 1)
    batch = reference.make_batch(model, 2, size)
    noise = refcompare.noise_gradients(model, weights, batch)
    if noise:
        return float("inf"), noise
    (worst, array), _, _ = refcompare.conditioning(model, weights, batch, samples=SCREEN_SAMPLES)
    return worst, array


def cnnc_check(cnnc, path):
    p = subprocess.run([cnnc, "check", path], capture_output=True, text=True)
    if p.returncode == 0:
        return None
    first = (p.stderr or p.stdout).strip().splitlines()
    return first[0] if first else f"exit {p.returncode}"


def main(argv=None):
    ap = argparse.ArgumentParser(description="random valid .cnn models")
    ap.add_argument("seed", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("outdir")
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build", "cnnc"))
    ap.add_argument("--no-ref-check", action="store_true", help="do not parse with tests/ref/cnnmodel.py")
    ap.add_argument("--screen", type=float, default=SCREEN,
                    help="replace a model when float32 PyTorch's error against float64 passes this "
                         f"fraction of the tolerance (default {SCREEN}; 0: no screen)")
    ap.add_argument("--size", type=int, default=4, help="the batch size reference.py suite will use (default 4)")
    ap.add_argument("--winograd", type=float, default=0.15,
                    help="chance that a conv on even sides takes the Winograd shape (3x3, stride 1, pad 1, "
                         "16/32/48 channels; default 0.15, four times that on 16k channels)")
    ap.add_argument("--first", type=int, default=1, help="index of the first model (default 1)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    os.makedirs(a.outdir, exist_ok=True)
    cnnmodel = None
    if not a.no_ref_check:
        sys.path[:0] = [os.path.join(ROOT, "tests", "ref"), HERE]
        import cnnmodel                                   # noqa: F811 (imports torch)
    rejected, disagree, illcond = [], [], []
    written = []
    for i in range(a.first, a.first + a.n):
        name = f"rs{a.seed}_{i:04d}"
        path = os.path.join(a.outdir, name + ".cnn")
        for attempt in range(100):
            rng = random.Random(f"cnnc-random:{a.seed}:{i}:{attempt}")
            text = Gen(rng, a.winograd).text(f"random model seed {a.seed} #{i}" + (f" (attempt {attempt})" if attempt else ""))
            with open(path, "w") as f:
                f.write(text)
            err = cnnc_check(a.cnnc, path)
            if err:
                rejected.append(f"{name} attempt {attempt}: cnnc: {err}")
                continue
            if cnnmodel is not None:
                try:
                    model = cnnmodel.parse_text(text, path)
                except Exception as e:                   # the reference refuses what cnnc accepts
                    disagree.append(f"{name} attempt {attempt}: reference: {e}")
                    continue
                if a.screen > 0:
                    try:
                        worst, array = screen(model, a.size)
                    except Exception as e:
                        disagree.append(f"{name} attempt {attempt}: reference trace: {e}")
                        continue
                    if worst > a.screen:
                        illcond.append(f"{name} attempt {attempt}: " + (
                            array if worst == float("inf") else
                            f"float32 PyTorch uses {worst:.2g} of the tolerance on {array}"))
                        continue
            break
        else:
            print(f"gen_models.py: no valid model for #{i} after 100 attempts", file=sys.stderr)
            return 1
        written.append(path)
    with open(os.path.join(a.outdir, "rejected.txt"), "w") as f:
        f.write("".join(l + "\n" for l in rejected + disagree + illcond))
    tries = len(written) + len(rejected) + len(disagree) + len(illcond)
    if not a.quiet or rejected or disagree:
        print(f"gen_models.py: seed {a.seed}: {len(written)} models from {tries} candidates: "
              f"{len(rejected)} rejected by cnnc check ({100.0 * len(rejected) / max(tries, 1):.1f}%), "
              f"{len(disagree)} accepted by cnnc but refused by the reference, "
              f"{len(illcond)} ill-conditioned for float32 ({100.0 * len(illcond) / max(tries, 1):.1f}%)")
        for l in (rejected + disagree)[:20]:
            print("  " + l)
    return 0


if __name__ == "__main__":
    sys.exit(main())
