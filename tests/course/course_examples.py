#!/usr/bin/python3
"""course_examples.py -- the course's worked numerical examples, run through cnnc.

Every expected number below is typed in from /work/shared/course/EXAMPLES.md (the
catalogue of worked examples in the course notes, each recomputed there with numpy and
torch); the comment above each test names the example id and the source lines (L5 = Lab #5,
SL = slides, N2 / N4 = notes, A3 = assignment 3).  Nothing expected is computed by cnnc.

How a test drives the generated code (SPEC.md section 3, runtime/trace.c):
  cnnc build MODEL.cnn -o EXE
  EXE trace --init W.npz --batch B.npz --steps N --out T.npz [--optimizer ... --lr ...]
W.npz holds PyTorch-named, PyTorch-laid-out tensors; x is float32 [B,H,W,C] (NHWC); T.npz has
`output` [B,outputs] (flattened NHWC: index (y*W+x)*C+c), `loss`, `grad.<tensor>`,
`grad.input` [B,H,W,C], `after.<tensor>`, `losses`.

Injecting an upstream gradient G (for a backward example): with `loss mse` the loss is the
mean of (out - t)^2 over all B*outputs elements, so dLoss/dout = 2(out - t)/(B*outputs).
The test runs the model once to read `out`, then again with t = out - G*(B*outputs)/2.  The
first run's numbers are not used as expected values -- they only place the target.

Usage: /usr/bin/python3 tests/course/course_examples.py [--cnnc build/cnnc] [--keep DIR] [-v]
                                                      [ID-substring ...]
Prints `PASS id` / `FAIL id: ...` per test and `N passed, M failed`; exit 1 on any failure.
"""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Fail(Exception):
    pass


def A(rows):
    """A matrix typed as in EXAMPLES.md: rows separated by ';' -> float64 array."""
    if isinstance(rows, str):
        return np.array([[float(v) for v in r.split()] for r in rows.split(';')])
    return np.asarray(rows, dtype=np.float64)


class Runner:
    def __init__(self, cnnc, workdir, verbose=False):
        self.cnnc = cnnc
        self.dir = workdir
        self.verbose = verbose
        self.exes = {}
        self.n = 0

    def build(self, model):
        """Build the model text once (cached by its text); return the executable's path."""
        model = model.strip() + "\n"
        if model in self.exes:
            return self.exes[model]
        tag = hashlib.sha1(model.encode()).hexdigest()[:10]
        src = os.path.join(self.dir, "m%s.cnn" % tag)
        exe = os.path.join(self.dir, "m%s" % tag)
        with open(src, "w") as f:
            f.write(model)
        r = subprocess.run([self.cnnc, "build", src, "-o", exe], capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(exe):
            raise Fail("cnnc build failed (exit %d) for model:\n%s%s%s" % (r.returncode, model, r.stdout, r.stderr))
        self.exes[model] = exe
        return exe

    def trace(self, model, weights, x, y, steps=0, args=()):
        """Run `EXE trace`; x is [B,H,W,C] (or [H,W] / [H,W,C] for one image); returns a dict."""
        exe = self.build(model)
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 2:
            x = x[None, :, :, None]
        elif x.ndim == 3:
            x = x[None]
        self.n += 1
        w = os.path.join(self.dir, "w%d.npz" % self.n)
        b = os.path.join(self.dir, "b%d.npz" % self.n)
        t = os.path.join(self.dir, "t%d.npz" % self.n)
        np.savez(w, **{k: np.asarray(v, dtype=np.float32) for k, v in weights.items()})
        np.savez(b, x=x, y=y)
        cmd = [exe, "trace", "--init", w, "--batch", b, "--steps", str(steps), "--out", t] + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise Fail("trace failed (exit %d): %s\nmodel:\n%s%s%s" % (r.returncode, " ".join(cmd), model.strip() + "\n",
                                                                        r.stdout, r.stderr))
        with np.load(t) as z:
            return {k: z[k] for k in z.files}

    def trace_mse(self, model, weights, x, n_out, steps=0, args=()):
        """A `loss mse` model with all-zero targets (forward only)."""
        b = 1 if np.asarray(x).ndim < 4 else np.asarray(x).shape[0]
        return self.trace(model, weights, x, np.zeros((b, n_out), np.float32), steps, args)

    def trace_upstream(self, model, weights, x, G, steps=0, args=()):
        """A `loss mse` model run so that dLoss/doutput = G ([outputs] or [B,outputs], NHWC order)."""
        G = np.asarray(G, dtype=np.float64)
        if G.ndim == 1:
            G = G[None]
        first = self.trace(model, weights, x, np.zeros(G.shape, np.float32))
        out = first["output"].astype(np.float64)
        if out.shape != G.shape:
            raise Fail("output shape %s, expected %s" % (out.shape, G.shape))
        t = (out - G * G.size / 2.0).astype(np.float32)
        return self.trace(model, weights, x, t, steps, args)


def nhwc(out, h, w, c):
    """trace's `output` row 0 ([H*W*C], NHWC order) -> [C,H,W] for comparing channel maps."""
    return np.asarray(out, dtype=np.float64)[0].reshape(h, w, c).transpose(2, 0, 1)


def check(what, got, want, rtol=1e-5, atol=1e-4):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.size == want.size and got.shape != want.shape:
        got = got.reshape(want.shape)
    if got.shape != want.shape:
        raise Fail("%s: shape %s, expected %s" % (what, got.shape, want.shape))
    bad = ~(np.abs(got - want) <= atol + rtol * np.abs(want))
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise Fail("%s: %d of %d values differ; at %s got %.9g expected %.9g\n  got      %s\n  expected %s"
                   % (what, int(bad.sum()), want.size, list(i), got[i], want[i],
                      np.array2string(got.ravel(), precision=6, max_line_width=10**6),
                      np.array2string(want.ravel(), precision=6, max_line_width=10**6)))


# ---------------------------------------------------------------------------------------
# Tests.  Each one: (id, function(runner)).  Data and expected values from EXAMPLES.md.

TESTS = []


def test(id_):
    def deco(fn):
        TESTS.append((id_, fn))
        return fn
    return deco


# slides-2ch-conv (SL L151-700; verdict WRONG, one sign: the slide's -3.1 top-left is +3.1).
# I[1], I[2] the two 4x4 input channels; W[o,i] out o from in i; bias [0.1 0.2]; s=1, valid.
SL_I1 = A("1 -2 2 2; 2 1 3 -2; -2 3 -3 1; -1 2 -4 2")
SL_I2 = A("3 0 0 0; -2 -2 1 -1; 2 -1 3 1; 5 -2 0 1")
SL_W = {(1, 1): A("1 -2; -2 1"), (1, 2): A("1 0; 0 1"), (2, 1): A("3 1; 2 2"), (2, 2): A("0 0; 0 4")}
SL_O1 = A("3.1 -3.9 -10.9; 4.1 -12.9 16.1; -3.9 0.1 9.1")     # corrected: +3.1, not the slide's -3.1
SL_O2 = A("-0.8 8.2 6.2; 5.2 18.2 7.2; -8.8 2.2 -7.8")


def slides_2ch_weights():
    w = np.zeros((2, 2, 2, 2))
    for (o, i), k in SL_W.items():
        w[o - 1, i - 1] = k
    return {"conv1.weight": w, "conv1.bias": [0.1, 0.2]}


@test("slides-2ch-conv")
def t_slides_2ch_conv(r):
    x = np.stack([SL_I1, SL_I2], axis=-1)                          # [4,4,2] NHWC
    T = r.trace_mse("input 4x4x2\nconv 2x2x2\nloss mse", slides_2ch_weights(), x, 18)
    O = nhwc(T["output"], 3, 3, 2)
    check("O[1]", O[0], SL_O1)
    if O[0, 0, 0] < 0:
        raise Fail("O[1] top-left is %g: the slide's sign error (-3.1), should be +3.1" % O[0, 0, 0])
    check("O[2]", O[1], SL_O2)


@test("slides-2ch-conv/flip")
def t_slides_2ch_conv_flip(r):
    # "Both output-1 kernels are 180-symmetric, so only O[2] detects a flipped kernel
    #  (true conv: O[2] = [15.2 10.2 5.2; 5.2 -5.8 6.2; 15.2 -13.8 10.2])."
    x = np.stack([SL_I1, SL_I2], axis=-1)
    T = r.trace_mse("input 4x4x2\nconv 2x2x2 flip\nloss mse", slides_2ch_weights(), x, 18)
    O = nhwc(T["output"], 3, 3, 2)
    check("O[1] (symmetric kernels: unchanged by flip)", O[0], SL_O1)
    check("O[2] true conv", O[1], A("15.2 10.2 5.2; 5.2 -5.8 6.2; 15.2 -13.8 10.2"))


# slides-tf-conv2d-nhwc (SL L1024-1057; OK): the same 32 numbers retyped as NHWC data.
@test("slides-tf-conv2d-nhwc")
def t_slides_tf_nhwc(r):
    X0 = A("1 2 -2 -1; 2 3 -3 -4; 3 -2 2 5; 0 1 3 0")
    X1 = A("-2 1 3 2; 2 -2 1 2; 0 -2 -1 -2; 0 -1 1 1")
    W = {(1, 1): A("1 1; 3 0"), (1, 2): A("-2 0; 2 0"), (2, 1): A("-2 0; 1 0"), (2, 2): A("1 1; 2 4")}
    w = np.zeros((2, 2, 2, 2))
    for (o, i), k in W.items():
        w[o - 1, i - 1] = k
    T = r.trace_mse("input 4x4x2\nconv 2x2x2\nloss mse", {"conv1.weight": w, "conv1.bias": [0.1, 0.2]},
                    np.stack([X0, X1], axis=-1), 18)
    O = nhwc(T["output"], 3, 3, 2)
    check("O1", O[0], A("17.1 3.1 -15.9; 10.1 -5.9 -4.9; 1.1 5.1 20.1"))
    check("O2", O[1], A("-4.8 3.2 16.2; -8.8 -16.8 1.2; -11.8 4.2 2.2"))


# notes4-conv-5x5-3x3 (N4 L393-433; kernel typo corrected to F = [1 0 -1; 1 0 -1; 1 0 -1]).
N4_I = np.arange(1, 26, dtype=np.float64).reshape(5, 5)
N4_F = A("1 0 -1; 1 0 -1; 1 0 -1")
N4_MODEL = "input 5x5\nconv 3x3x1\nloss mse"


@test("notes4-conv-5x5-3x3/forward")
def t_notes4_conv_fwd(r):
    T = r.trace_mse(N4_MODEL, {"conv1.weight": N4_F[None, None], "conv1.bias": [0]}, N4_I, 9)
    check("I * F (stated: all -6)", nhwc(T["output"], 3, 3, 1)[0], np.full((3, 3), -6.0))


@test("notes4-conv-5x5-3x3/flip")
def t_notes4_conv_flip(r):
    # "True conv with that F gives +6."
    T = r.trace_mse("input 5x5\nconv 3x3x1 flip\nloss mse", {"conv1.weight": N4_F[None, None], "conv1.bias": [0]},
                    N4_I, 9)
    check("true conv", nhwc(T["output"], 3, 3, 1)[0], np.full((3, 3), 6.0))


@test("notes4-conv-5x5-3x3/backward")
def t_notes4_conv_bwd(r):
    # "Backward, delta = ones(3x3): dL/dF = I * delta = [63 72 81; 108 117 126; 153 162 171], dL/dB = 9.
    #  Derived, with the corrected F: dL/dI = [1 1 0 -1 -1; 2 2 0 -2 -2; 3 3 0 -3 -3; 2 2 0 -2 -2; 1 1 0 -1 -1]"
    T = r.trace_upstream(N4_MODEL, {"conv1.weight": N4_F[None, None], "conv1.bias": [0]}, N4_I, np.ones(9))
    check("dL/dF", T["grad.conv1.weight"][0, 0], A("63 72 81; 108 117 126; 153 162 171"))
    check("dL/dB", T["grad.conv1.bias"], [9.0])
    check("dL/dI", T["grad.input"][0, :, :, 0],
          A("1 1 0 -1 -1; 2 2 0 -2 -2; 3 3 0 -3 -3; 2 2 0 -2 -2; 1 1 0 -1 -1"))


# lab5-maxpool-unpool (L5 L15, derived) and notes4-pool-4x4 (N4 L86-100): M, 2x2 windows, stride 2.
M = A("2 1 -11 0; 0 10 -15 -16; 23 100 2 3; -23 0 7 20")


@test("notes4-pool-4x4/max")
def t_pool_max(r):
    T = r.trace_mse("input 4x4\npool 2\nloss mse", {}, M, 4)
    check("max pool", nhwc(T["output"], 2, 2, 1)[0], A("10 0; 100 20"))


@test("lab5-maxpool-unpool/backward")
def t_pool_max_bwd(r):
    # "unpool of [1 2; 3 4] (= max-pool backward) = [0 0 0 2; 0 1 0 0; 0 3 0 0; 0 0 0 4]"
    # (argmax row*4+col = [5 3; 9 15]; the top-right max is 0, so this is the visible one)
    T = r.trace_upstream("input 4x4\npool 2\nloss mse", {}, M, [1, 2, 3, 4])
    check("max-pool backward", T["grad.input"][0, :, :, 0], A("0 0 0 2; 0 1 0 0; 0 3 0 0; 0 0 0 4"))


@test("lab5-maxpool-unpool/unpool")
def t_pool_unpool(r):
    # "unpool(pooled) = [0 0 0 0; 0 10 0 0; 0 100 0 0; 0 0 0 20]"
    T = r.trace_mse("input 4x4\npool 2\nunpool\nloss mse", {}, M, 16)
    check("pool 2; unpool", nhwc(T["output"], 4, 4, 1)[0], A("0 0 0 0; 0 10 0 0; 0 100 0 0; 0 0 0 20"))


@test("notes4-pool-4x4/avg")
def t_pool_avg(r):
    # "avg (derived) [3.25 -10.5; 25 8]"
    T = r.trace_mse("input 4x4\navgpool 2\nloss mse", {}, M, 4)
    check("avg pool", nhwc(T["output"], 2, 2, 1)[0], A("3.25 -10.5; 25 8"))


@test("notes2-avgpool-backward")
def t_avgpool_bwd(r):
    # N2 L479: "4x4 input, dP = [1 2; 3 4] -> dC = [.25 .25 .5 .5; .25 .25 .5 .5; .75 .75 1 1; .75 .75 1 1]"
    T = r.trace_upstream("input 4x4\navgpool 2\nloss mse", {}, M, [1, 2, 3, 4])
    check("avg-pool backward", T["grad.input"][0, :, :, 0],
          A(".25 .25 .5 .5; .25 .25 .5 .5; .75 .75 1 1; .75 .75 1 1"))


@test("notes2-maxpool-backward")
def t_notes2_maxpool_bwd(r):
    # N2 L441-449: "[1 2; 3 4] pools to [4]; with dP = 2, dC = [0 0; 0 2]"
    T = r.trace_upstream("input 2x2\npool 2\nloss mse", {}, A("1 2; 3 4"), [2])
    check("pooled", T["output"], [[4]])
    check("dC", T["grad.input"][0, :, :, 0], A("0 0; 0 2"))


@test("notes4-maxpool-backward")
def t_notes4_maxpool_bwd(r):
    # N4 L241-267: "[1 3; 2 4] pools to [4]; upstream [10] -> [0 0; 0 10]"
    T = r.trace_upstream("input 2x2\npool 2\nloss mse", {}, A("1 3; 2 4"), [10])
    check("pooled", T["output"], [[4]])
    check("dC", T["grad.input"][0, :, :, 0], A("0 0; 0 10"))


@test("notes2+notes4-maxpool-backward/batch2")
def t_maxpool_bwd_batch(r):
    # The two examples above as one batch of 2 (same model): each image keeps its own argmax.
    x = np.stack([A("1 2; 3 4"), A("1 3; 2 4")])[:, :, :, None]
    T = r.trace_upstream("input 2x2\npool 2\nloss mse", {}, x, [[2], [10]])
    check("pooled", T["output"], [[4], [4]])
    check("dC", T["grad.input"][:, :, :, 0], [A("0 0; 0 2"), A("0 0; 0 10")])


@test("slides-tf-maxpool")
def t_slides_tf_maxpool(r):
    # SL L1327-1402 (reassembled): output and gradient for an all-ones upstream.
    X = A("0.58009243 1.1895669 2.6777048 0.15597591; -0.94100916 -0.7437242 -1.0578039 -0.30651447;"
          "0.53753567 0.10521288 -0.43827865 -0.7727399; -0.42974523 -1.669584 -0.92768306 -0.19861951")
    T = r.trace_upstream("input 4x4\npool 2\nloss mse", {}, X, np.ones(4))
    check("pooled", nhwc(T["output"], 2, 2, 1)[0], A("1.1895669 2.6777048; 0.53753567 -0.19861951"), 1e-6, 1e-6)
    check("gradient", T["grad.input"][0, :, :, 0], A("0 1 1 0; 0 0 0 0; 1 0 0 0; 0 0 0 1"), 1e-6, 1e-6)


# lab5-full-conv-dX (L5 L19-31): X, F = [0 1; 2 3], no bias, dO = [1 2; 3 4], lr 0.05.
L5_X = A("200 300 400; 100 200 300; 150 200 300")
L5_F = A("0 1; 2 3")
L5_MODEL = "input 3x3\nconv 2x2x1 bias=no\nloss mse"


@test("lab5-full-conv-dX")
def t_lab5_full_conv(r):
    T = r.trace_upstream(L5_MODEL, {"conv1.weight": L5_F[None, None]}, L5_X, [1, 2, 3, 4],
                         steps=1, args=["--optimizer", "sgd", "--lr", "0.05"])
    if "grad.conv1.bias" in T or "after.conv1.bias" in T:
        raise Fail("bias=no, yet the trace has a conv1.bias tensor")
    dX = T["grad.input"][0, :, :, 0]
    # "dL/dX = pad1(dO) * rot180(F) = [0 1 2; 2 10 10; 6 17 12]"  (the double flip would give [3 8 4; 10 20 8; 3 4 0])
    check("dL/dX", dX, A("0 1 2; 2 10 10; 6 17 12"))
    # "X - 0.05 dL/dX = [200 299.95 399.9; 99.9 199.5 299.5; 149.7 199.15 299.4]" (the lab steps the input)
    check("X - 0.05 dL/dX", L5_X - 0.05 * dX.astype(np.float64),
          A("200 299.95 399.9; 99.9 199.5 299.5; 149.7 199.15 299.4"))
    # "Derived weight gradient dL/dF = X * dO = [1900 2900; 1750 2600]"
    check("dL/dF", T["grad.conv1.weight"][0, 0], A("1900 2900; 1750 2600"))
    # one SGD step at the lab's lr on F: F - 0.05 [1900 2900; 1750 2600] = [-95 -144; -85.5 -127]
    check("F after one sgd step, lr 0.05", T["after.conv1.weight"][0, 0], A("-95 -144; -85.5 -127"))


# notes4-softmax (N4 L102-113): z = [3 -2 -100].
SM_Z = np.array([3.0, -2.0, -100.0])
SM_P = [0.993307, 0.00669285, 1.8397e-45]   # 1.84e-45 (the notes' 1.88e-45 is WRONG); float32: subnormal or 0
IDENT3 = {"fc1.weight": np.eye(3)}
SM_MODEL = "input 1x1x3\nfc 3 bias=no\nsoftmax\nloss mse"   # loss mse: the softmax is not folded
CE_MODEL = "input 1x1x3\nfc 3 bias=no"                      # default loss: softmax cross-entropy


@test("notes4-softmax/softmax")
def t_softmax(r):
    T = r.trace_mse(SM_MODEL, IDENT3, SM_Z.reshape(1, 1, 3), 3)
    check("p", T["output"][0], SM_P, rtol=1e-5, atol=1e-9)


@test("notes4-softmax/jacobian")
def t_softmax_jacobian(r):
    # "Jacobian p_i(delta_ij - p_j) diagonal [0.0066481 0.0066481 1.84e-45]": upstream e_i
    # gives row i of the Jacobian as dLoss/dz (= grad.input through the identity fc).
    for i in range(2):
        G = np.zeros(3)
        G[i] = 1
        T = r.trace_upstream(SM_MODEL, IDENT3, SM_Z.reshape(1, 1, 3), G)
        check("dp_%d/dz_%d" % (i, i), T["grad.input"][0, 0, 0, i], 0.0066481, rtol=1e-4, atol=1e-9)


@test("notes4-softmax/crossentropy")
def t_softmax_ce(r):
    # "cross-entropy -log p_t = 0.0067153 / 5.0067153 / 103.0067153 for t = 0/1/2;
    #  gradient for t=0 p - onehot = [-0.0066929 0.0066929 1.84e-45]"
    for t, loss in enumerate([0.0067153, 5.0067153, 103.0067153]):
        T = r.trace(CE_MODEL, IDENT3, SM_Z.reshape(1, 1, 3), np.array([t], np.int64))
        check("loss for t=%d" % t, T["loss"], [loss], rtol=1e-5, atol=1e-6)
        check("logits for t=%d (trailing softmax folded, so output = z)" % t, T["output"][0], SM_Z)
        if t == 0:
            check("p - onehot (t=0)", T["grad.input"][0, 0, 0], [-0.0066929, 0.0066929, 1.84e-45],
                  rtol=1e-4, atol=1e-9)
    # The three labels as one batch: the loss is averaged over the batch (PyTorch), so it is the mean of the
    # three losses above and each row's gradient is (p - onehot)/3.
    T = r.trace(CE_MODEL, IDENT3, np.tile(SM_Z.reshape(1, 1, 1, 3), (3, 1, 1, 1)), np.array([0, 1, 2], np.int64))
    check("batch loss", T["loss"], [(0.0067153 + 5.0067153 + 103.0067153) / 3], rtol=1e-5, atol=1e-6)
    check("batch gradient, t=0 row", T["grad.input"][0, 0, 0], np.array([-0.0066929, 0.0066929, 0]) / 3,
          rtol=1e-4, atol=1e-9)
    # dW[0, j] = sum_b dz_b[0] * z_j = (3 p0 - 1)/3 * z_j
    check("fc weight gradient, row 0", T["grad.fc1.weight"][0], (0.993307 - 1 / 3.0) * SM_Z, rtol=1e-4, atol=1e-6)


# lab5-conv-5x5-2x2 (L5 L14, derived): X[r,c] = 5r+c+1, F = [0 1; 2 3], no bias.
L5C_X = np.arange(1, 26, dtype=np.float64).reshape(5, 5)


def lab5_conv(r, opts, h, want):
    T = r.trace_mse("input 5x5\nconv 2x2x1 bias=no %s\nloss mse" % opts, {"conv1.weight": L5_F[None, None]},
                    L5C_X, h * h)
    check("X * F %s" % opts, nhwc(T["output"], h, h, 1)[0], want)


@test("lab5-conv-5x5-2x2/s1p0")
def t_lab5_s1p0(r):
    # "s=1,p=0 -> [35 41 47 53; 65 71 77 83; 95 101 107 113; 125 131 137 143]"
    lab5_conv(r, "", 4, A("35 41 47 53; 65 71 77 83; 95 101 107 113; 125 131 137 143"))


@test("lab5-conv-5x5-2x2/s2p0")
def t_lab5_s2p0(r):
    lab5_conv(r, "stride=2", 2, A("35 47; 95 107"))                       # "s=2,p=0 -> [35 47; 95 107]"


@test("lab5-conv-5x5-2x2/s2p1")
def t_lab5_s2p1(r):
    lab5_conv(r, "stride=2 pad=1", 3, A("3 13 23; 39 71 83; 79 131 143"))  # "s=2,p=1 -> [3 13 23; ...]"


@test("lab5-conv-5x5-2x2/s1p1")
def t_lab5_s1p1(r):
    lab5_conv(r, "pad=1", 6, A("3 8 13 18 23 10; 19 35 41 47 53 20; 39 65 71 77 83 30; 59 95 101 107 113 40;"
                               "79 125 131 137 143 50; 21 22 23 24 25 0"))


# notes2-edge-6x6 (N2 L13-58): vertical-edge K and the derived horizontal filter, as two filters.
N2_X = A("1 6 9 10 2 8; 2 5 1 8 4 2; 3 7 4 9 10 3; 9 8 3 6 7 9; 8 0 9 4 7 2; 9 10 12 6 9 8")
N2_KV = A("1 0 -1; 1 0 -1; 1 0 -1")
N2_KH = A("1 1 1; 0 0 0; -1 -1 -1")
N2_OV = A("-8 -9 -2 14; 6 -3 -13 9; 4 -4 -8 5; 2 2 1 -3")
N2_OH = A("2 5 -2 -2; -12 -3 -3 -8; -3 7 3 9; -11 -11 -11 -1")


@test("notes2-edge-6x6")
def t_notes2_edge(r):
    T = r.trace_mse("input 6x6\nconv 3x3x2 bias=no\nloss mse", {"conv1.weight": np.stack([N2_KV, N2_KH])[:, None]},
                    N2_X, 32)
    O = nhwc(T["output"], 4, 4, 2)
    check("vertical edge", O[0], N2_OV)
    check("horizontal edge (derived)", O[1], N2_OH)


@test("notes2-edge-6x6/flip")
def t_notes2_edge_flip(r):
    # "true conv negates it" (both filters are antisymmetric under a 180-degree turn)
    T = r.trace_mse("input 6x6\nconv 3x3x2 bias=no flip\nloss mse",
                    {"conv1.weight": np.stack([N2_KV, N2_KH])[:, None]}, N2_X, 32)
    O = nhwc(T["output"], 4, 4, 2)
    check("vertical edge, true conv", O[0], -N2_OV)
    check("horizontal edge, true conv", O[1], -N2_OH)


# notes4-conv-identity (N4 L5-29): "3x3 identity * 2x2 identity -> [2 0; 0 2]".
@test("notes4-conv-identity")
def t_notes4_identity(r):
    T = r.trace_mse("input 3x3\nconv 2x2x1 bias=no\nloss mse", {"conv1.weight": np.eye(2)[None, None]}, np.eye(3), 4)
    check("I3 * I2", nhwc(T["output"], 2, 2, 1)[0], A("2 0; 0 2"))


# notes4-im2col-2ch (N4 L31-76): ch1 = 1..16, ch2 = 17..32; f1 = [1 0; 0 -1], f2 = [1 -1; 1 0].
@test("notes4-im2col-2ch")
def t_notes4_im2col(r):
    ch1 = np.arange(1, 17, dtype=np.float64).reshape(4, 4)
    ch2 = np.arange(17, 33, dtype=np.float64).reshape(4, 4)
    f1, f2, z = A("1 0; 0 -1"), A("1 -1; 1 0"), np.zeros((2, 2))
    w = np.array([[f1, z], [z, f2], [f1, f2]])        # filter 0: f1 on ch1; 1: f2 on ch2; 2: f1|f2
    T = r.trace_mse("input 4x4x2\nconv 2x2x3 bias=no\nloss mse", {"conv1.weight": w}, np.stack([ch1, ch2], -1), 27)
    O = nhwc(T["output"], 3, 3, 3)
    check("ch1 * f1 (-5 everywhere)", O[0], np.full((3, 3), -5.0))
    check("ch2 * f2", O[1], A("20 21 22; 24 25 26; 28 29 30"))
    check("f1|f2 as one 2-channel filter", O[2], A("15 16 17; 19 20 21; 23 24 25"))


# slides-tf-transposed-conv (SL L1095-1228): 3x3 W, stride 2, upstream r (r11 solved) -> 5x5.
@test("slides-tf-transposed-conv")
def t_slides_deconv(r):
    W = A("0.13429713 1.9649408 0.74939513; 0.6982393 1.2397809 1.4247327; 1.5534406 0.1190145 1.3256309")
    R = A("25.535583 28.583742; 23.470192 20.622599")
    want = A("3.429356 50.175909 22.974956 56.165361 21.420517; 17.829948 31.658528 56.339672 35.437577 40.724192;"
             "42.819991 49.156642 98.611907 43.924065 53.345967; 16.387810 29.097896 47.838259 25.567504 29.381691;"
             "36.459549 2.793293 63.148794 2.454388 27.337954")
    T = r.trace_mse("input 2x2\ndeconv 3x3x1 stride=2\nloss mse",
                    {"deconv1.weight": W[None, None], "deconv1.bias": [0]}, R, 25)
    check("transposed conv", nhwc(T["output"], 5, 5, 1)[0], want, rtol=2e-6, atol=1e-5)


# slides-conv-as-matrix (SL L1083-1091, derived): I = 0..15 (4x4), W = [1 2 3; 4 5 6; 7 8 9].
@test("slides-conv-as-matrix")
def t_slides_conv_matrix(r):
    I = np.arange(16, dtype=np.float64).reshape(4, 4)
    W = A("1 2 3; 4 5 6; 7 8 9")
    model = "input 4x4\nconv 3x3x1 bias=no\nloss mse"
    T = r.trace_mse(model, {"conv1.weight": W[None, None]}, I, 4)
    check("C vec(I)", nhwc(T["output"], 2, 2, 1)[0], A("303 348; 483 528"))
    T = r.trace_upstream(model, {"conv1.weight": W[None, None]}, I, [1, 2, 3, 4])
    check("C^T vec([1 2; 3 4])", T["grad.input"][0, :, :, 0], A("1 4 7 6; 7 23 33 24; 19 53 63 42; 21 52 59 36"))


# The 1-D examples as 1xN images with a 1x3 kernel.
ONE_D = "input 1x4\nconv 1x3x1 bias=no\nloss mse"


@test("slides-1d-corr-vs-conv")
def t_1d_corr(r):
    # SL L86-136: I = [1 2 3 4], W = [1 2 3]: correlation [14 20], true conv [10 16].
    w = {"conv1.weight": A("1 2 3")[None, None]}
    T = r.trace_mse(ONE_D, w, A("1 2 3 4"), 2)
    check("correlation", T["output"][0], [14, 20])
    T = r.trace_mse("input 1x4\nconv 1x3x1 bias=no flip\nloss mse", w, A("1 2 3 4"), 2)
    check("true conv", T["output"][0], [10, 16])


@test("slides-1d-backward")
def t_1d_backward(r):
    # SL L706-900: LO = [1 2] -> dL/dW = [5 8 11], dL/dI = [1 4 7 6].
    T = r.trace_upstream(ONE_D, {"conv1.weight": A("1 2 3")[None, None]}, A("1 2 3 4"), [1, 2])
    check("dL/dW", T["grad.conv1.weight"][0, 0, 0], [5, 8, 11])
    check("dL/dI", T["grad.input"][0, 0, :, 0], [1, 4, 7, 6])


@test("slides-tf-conv1d-grad")
def t_tf_conv1d_grad(r):
    # SL L904-973: n, upstream g, k = 3 -> dL/dW = [0.6445209 2.1667714 -1.0011742] (kernel not printed:
    # dL/dW does not depend on it; zero is used).
    n = A("0.20350695 -0.31481498 -0.85656077 0.5981919")
    g = [-0.47567356, -2.3547919]
    T = r.trace_upstream(ONE_D, {"conv1.weight": np.zeros((1, 1, 1, 3))}, n, g)
    check("dL/dW", T["grad.conv1.weight"][0, 0, 0], [0.6445209, 2.1667714, -1.0011742], rtol=1e-5, atol=1e-6)


@test("asg-1d-conv-grad")
def t_asg_1d(r):
    # A3 L87-101 (derived): x = [1 2 3 4 5], alpha = [1 -1 2] -> dk = [5 7 9], db = 2.
    T = r.trace_upstream("input 1x5\nconv 1x3x1\nloss mse",
                         {"conv1.weight": A("0.5 -1 0.25")[None, None], "conv1.bias": [0.3]},
                         A("1 2 3 4 5"), [1, -1, 2])
    check("dk", T["grad.conv1.weight"][0, 0, 0], [5, 7, 9])
    check("db", T["grad.conv1.bias"], [2])


# asg-overlap-pool-ties (A3 L71-85, derived): v1 = max(relu z1, relu z2), v2 = max(relu z2, relu z3),
# upstream (10, 20).
TIES = "input 1x3\nrelu\npool 1x2 stride=1\nloss mse"


@test("asg-overlap-pool-ties")
def t_ties(r):
    # "z = (1,3,2) -> dz = (0, 30, 0) (z2 wins both, gradients add)"
    T = r.trace_upstream(TIES, {}, A("1 3 2"), [10, 20])
    check("dz for z=(1,3,2)", T["grad.input"][0, 0, :, 0], [0, 30, 0])
    # "z = (-1,-2,-3) -> 0"
    T = r.trace_upstream(TIES, {}, A("-1 -2 -3"), [10, 20])
    check("dz for z=(-1,-2,-3)", T["grad.input"][0, 0, :, 0], [0, 0, 0])
    # "z = (3,3,3) -> notes (10, 0, 20) but torch max_pool1d (first max wins) (10, 20, 0)" -- SPEC: first max.
    T = r.trace_upstream(TIES, {}, A("3 3 3"), [10, 20])
    check("dz for z=(3,3,3), first maximum wins", T["grad.input"][0, 0, :, 0], [10, 20, 0])


# notes4-adam (N4 L441-490), variant (c) standard Adam (= torch): (w1, w2, b0, b1, conv1) =
# (0.5, 0.3, 0.2, -0.1, 0.8), gradients (0.02, 0.01, 0.01, -0.03, 0.05); w2 also with the notes'
# -0.04; beta1 0.9, beta2 0.995, lr 0.01, eps 1e-7, one step.  The six parameters are the weights
# of `fc 6 bias=no` on the input 1, so output = weights and dLoss/dweight = dLoss/doutput.
@test("notes4-adam/c")
def t_adam(r):
    model = "input 1x1x1\nfc 6 bias=no\nloss mse\noptimizer adam lr=0.01 beta2=0.995 eps=1e-7"
    w = np.array([0.5, 0.3, 0.3, 0.2, -0.1, 0.8])
    g = [0.02, 0.01, -0.04, 0.01, -0.03, 0.05]
    T = r.trace_upstream(model, {"fc1.weight": w[:, None]}, np.ones((1, 1, 1)), g, steps=1)
    check("gradients", T["grad.fc1.weight"][:, 0], g, rtol=1e-4, atol=1e-7)
    # "(c) standard Adam with bias correction (= torch) | 0.49 | 0.29 / 0.31 | 0.19 | -0.09 | 0.79"
    # ((a) would give w1 0.486199, (b) 0.485859: the tolerance tells them apart)
    check("after one Adam step", T["after.fc1.weight"][:, 0], [0.49, 0.29, 0.31, 0.19, -0.09, 0.79],
          rtol=0, atol=2e-6)


# ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build", "cnnc"))
    ap.add_argument("--keep", help="keep the work files in this directory")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("only", nargs="*", help="run only tests whose id contains one of these")
    a = ap.parse_args()
    if not os.access(a.cnnc, os.X_OK):
        print("course_examples: %s not built (run make)" % a.cnnc)
        return 77
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
        work = a.keep
    else:
        work = tempfile.mkdtemp(prefix="course-examples-")
    r = Runner(os.path.abspath(a.cnnc), work, a.verbose)
    passed = failed = 0
    try:
        for id_, fn in TESTS:
            if a.only and not any(s in id_ for s in a.only):
                continue
            try:
                fn(r)
                print("PASS %s" % id_)
                passed += 1
            except Fail as e:
                print("FAIL %s: %s" % (id_, e))
                failed += 1
            except Exception:
                print("FAIL %s: test crashed\n%s" % (id_, traceback.format_exc()))
                failed += 1
            sys.stdout.flush()
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
