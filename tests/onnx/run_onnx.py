#!/usr/bin/python3
"""run_onnx.py — the ONNX operator conformance runner for cnnc.

For every case folder of ONNX 1.12's operator tests (case.txt + data.npz, see
../shared/onnx-cases/README.md) this script decides whether the .cnn language
can say the operator with those attributes.  If it can, it writes the .cnn
model, the weights (PyTorch state_dict names and layouts) and the batch (x in
NHWC), builds the model with build/cnnc (executables cached by the hash of the
model text and of cnnc and libcnnrt.a), runs `EXE trace --steps 0` and compares
what the trace wrote with the ONNX expected outputs.

Prints one line per case,
    PASS name | SKIP name: reason | FAIL name: details
then `onnx: P passed, S skipped, F failed`; exits 1 only when a case fails.

    usage: tests/onnx/run_onnx.py [-v] [-j N] [--cases DIR] [--work DIR] [NAME_SUBSTRING...]

  -v          also print, per passed case, how it was mapped and the largest difference
  -j N        cases run in parallel (default: min(8, cores)); traces use --threads 1
  --cases     the case folders (default $ONNX_CASES or ../shared/onnx-cases from the repo root)
  --work      scratch and build cache (default build/onnx); every case leaves
              model.cnn, w.npz, b*.npz and t*.npz in WORK/cases/NAME for reruns by hand

How ONNX tensors map onto a batch of NHWC images (the .cnn `input HxWxC`):
  rank 1 [K]          -> B=1, input 1x1xK
  rank 2 [N,C]        -> B=N, input 1x1xC
  rank 3 [N,C,L]      -> B=N, input 1xLxC
  rank 4 [N,C,H,W]    -> B=N, input HxWxC
so axis 1 (ONNX's channel axis) is always our channel axis.  Element-wise
operators do not care; softmax, flatten and batchnorm do.

Numbers: a value passes when |got - expected| <= RTOL * max|expected| + ATOL.
Only numpy is used.
"""
import argparse
import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import sys
import threading

import numpy as np

RTOL = 1e-5
ATOL = 1e-6

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class Skip(Exception):
    """The .cnn language (or the trace command) cannot express this case."""


# ---------------------------------------------------------------------------
# reading a case

class Case:
    def __init__(self, folder):
        self.folder = folder
        self.name = os.path.basename(folder.rstrip('/'))
        self.op = None
        self.attrs = {}
        self.inputs = []     # (index, name, dtype, shape)
        self.outputs = []
        with open(os.path.join(folder, 'case.txt')) as f:
            for line in f:
                w = line.split()
                if not w:
                    continue
                if w[0] == 'op':
                    self.op = w[1]
                elif w[0] == 'attr':
                    self.attrs[w[1]] = ' '.join(w[2:])
                elif w[0] in ('input', 'output'):
                    shape = () if w[4] == 'scalar' else tuple(int(s) for s in w[4].split('x'))
                    (self.inputs if w[0] == 'input' else self.outputs).append((int(w[1]), w[2], w[3], shape))
        self.data = dict(np.load(os.path.join(folder, 'data.npz')))

    def ints(self, name, default=None):
        if name not in self.attrs:
            return default
        return [int(v) for v in self.attrs[name].split(',')]

    def int(self, name, default):
        return int(self.attrs[name]) if name in self.attrs else default

    def float(self, name, default):
        return float(self.attrs[name]) if name in self.attrs else default

    def str(self, name, default):
        return self.attrs.get(name, default)

    def inp(self, i):
        return self.data.get('input_%d' % i)

    def out(self, i):
        return self.data['output_%d' % i]

    def n_inputs(self):
        return len(self.inputs)


# ---------------------------------------------------------------------------
# layout helpers

def to_nhwc(a):
    """An ONNX tensor (rank 1..4, axis 1 = channels) as a batch [B,H,W,C]."""
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 1:
        return a.reshape(1, 1, 1, -1)
    if a.ndim == 2:
        return a.reshape(a.shape[0], 1, 1, a.shape[1])
    if a.ndim == 3:
        return np.ascontiguousarray(a.transpose(0, 2, 1)[:, None, :, :])
    if a.ndim == 4:
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1))
    raise Skip('rank-%d tensor (cnn images are HxWxC)' % a.ndim)


def from_nhwc(out, shape):
    """The trace's output [B, H*W*C] (NHWC order) back to the ONNX shape."""
    shape = tuple(shape)
    if len(shape) <= 2:
        return out.reshape(shape)
    if len(shape) == 3:
        n, c, l = shape
        return out.reshape(n, l, c).transpose(0, 2, 1)
    n, c, h, w = shape
    return out.reshape(n, h, w, c).transpose(0, 3, 1, 2)


def input_line(x_nhwc):
    _, h, w, c = x_nhwc.shape
    return 'input %dx%dx%d' % (h, w, c)


def hw(v):
    """`3` or `3x2` for a pair of per-axis values."""
    return '%d' % v[0] if v[0] == v[1] else '%dx%d' % (v[0], v[1])


def fnum(v):
    """A float attribute written so that cnnc reads back the same float32."""
    return repr(float(np.float32(v)))


def need_rank(case, i, ranks, what):
    shape = case.inputs[i][3]
    if len(shape) not in ranks:
        raise Skip('%d-D %s input %s (cnn layers take 2-D images HxWxC)'
                   % (len(shape) - 2, what, 'x'.join(map(str, shape))))


def need_float(case):
    for _, name, dtype, _ in case.inputs[:1]:
        if dtype != 'float32':
            raise Skip('%s input %s (cnn computes in float32 only)' % (dtype, name))


def spatial_pads(case, in_hw, k, s, d):
    """ONNX pads/auto_pad of a conv or pool -> symmetric (ph, pw), or Skip."""
    auto = case.str('auto_pad', 'NOTSET')
    if auto == 'VALID':
        return (0, 0), False
    if auto in ('SAME_UPPER', 'SAME_LOWER'):
        pads = []
        for i in range(2):
            out = -(-in_hw[i] // s[i])
            total = max(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in_hw[i])
            if total % 2:
                lo = total // 2 if auto == 'SAME_UPPER' else total - total // 2
                raise Skip('auto_pad=%s needs asymmetric padding (%s: %d before, %d after; cnn pads both sides alike)'
                           % (auto, 'HW'[i], lo, total - lo))
            pads.append(total // 2)
        return tuple(pads), True
    p = case.ints('pads', [0, 0, 0, 0])
    if p[0] != p[2] or p[1] != p[3]:
        raise Skip('asymmetric pads %s (begin H,W / end H,W; cnn pads both sides alike)' % ','.join(map(str, p)))
    return (p[0], p[1]), False


# ---------------------------------------------------------------------------
# a plan: the models to run and what to compare

class Run:
    """One trace of one model on one batch."""
    def __init__(self, cnn, weights, x, y, eval_mode=False):
        self.cnn, self.weights, self.x, self.y, self.eval_mode = cnn, weights, x, y, eval_mode


class Plan:
    def __init__(self, note):
        self.note = note
        self.runs = []
        self.checks = []   # (label, function(results) -> got, expected)

    def run(self, cnn, weights, x, y, loss='mse', eval_mode=False):
        """Adds a trace; forward-only checks use MSE with zero targets (nothing is folded).
        eval_mode: `trace --eval`, inference (running statistics, no dropout)."""
        x = np.asarray(x, dtype=np.float32)
        text = cnn.rstrip('\n') + '\nloss %s\n' % loss
        self.runs.append(Run(text, weights, x, y, eval_mode))
        return len(self.runs) - 1

    def check(self, label, got, expected):
        """got: function(traces) -> array; expected: an array or function(traces) -> array."""
        self.checks.append((label, got, expected))


# ---------------------------------------------------------------------------
# the operators

def forward_plan(case, x, layer, weights, note, eval_mode=False, same_size=False):
    """One forward run of `input; layer` on x (NCHW), its output compared with case output 0.
    same_size: the output has x's size per example (activations, whose rank-1 cases have no
    batch axis in the expected output's shape)."""
    plan = Plan(note)
    xb = to_nhwc(x)
    shape = case.out(0).shape
    width = int(np.prod(xb.shape[1:] if same_size else shape[1:]))
    i = plan.run('%s; %s' % (input_line(xb), layer), weights, xb,
                 np.zeros((xb.shape[0], width), np.float32), eval_mode=eval_mode)
    plan.check('y', lambda r: from_nhwc(r[i]['output'], shape), case.out(0))
    return plan


def op_activation(case, layer, eval_mode=False):
    need_float(case)
    x = case.inp(0)
    if x.ndim > 4:
        raise Skip('rank-%d tensor' % x.ndim)
    return forward_plan(case, x, layer, {}, '%s on %s' % (layer, 'x'.join(map(str, x.shape))), eval_mode,
                        same_size=True)


def op_relu(case):
    return op_activation(case, 'relu')


def op_sigmoid(case):
    return op_activation(case, 'sigmoid')


def op_tanh(case):
    return op_activation(case, 'tanh')


def op_leakyrelu(case):
    return op_activation(case, 'leakyrelu %s' % fnum(case.float('alpha', 0.01)))


def op_softmax(case):
    x = case.inp(0)
    rank = x.ndim
    axis = case.int('axis', -1)     # opset 13: one axis, default the last
    if axis < 0:
        axis += rank
    channel = 0 if rank == 1 else 1
    if axis != channel:
        raise Skip('softmax over axis %d of a %s tensor; cnn\'s softmax is over channels (axis 1) only'
                   % (axis, 'x'.join(map(str, x.shape))))
    return op_activation(case, 'softmax')


def op_flatten(case):
    x = case.inp(0)
    rank = x.ndim
    axis = case.int('axis', 1)
    if axis < 0:
        axis += rank
    if axis != 1:
        raise Skip('Flatten axis=%s (%d after normalising) on a rank-%d tensor; cnn\'s flatten keeps the batch '
                   'axis and flattens the rest (axis 1)' % (case.attrs.get('axis', '1'), axis, rank))
    return op_activation(case, 'flatten')


def op_gemm(case):
    a, b = case.inp(0), case.inp(1)
    c = case.inp(2) if case.n_inputs() > 2 else None
    alpha, beta = case.float('alpha', 1.0), case.float('beta', 1.0)
    if case.int('transA', 0):
        a = a.T
    if case.int('transB', 0):
        b = b.T
    m, k = a.shape
    n = b.shape[1]
    weights = {'fc1.weight': (np.float32(alpha) * b.T).astype(np.float32)}
    note = 'fc %d on input 1x1x%d, batch %d' % (n, k, m)
    if c is not None:
        cb = np.broadcast_to(c, (m, n))
        if not (cb == cb[0:1]).all():
            raise Skip('bias C of shape %s differs between rows; fc\'s bias is one value per output'
                       % 'x'.join(map(str, c.shape)))
        weights['fc1.bias'] = (np.float32(beta) * cb[0]).astype(np.float32)
    if alpha != 1:
        note += ', alpha folded into fc1.weight'
    if c is not None and beta != 1:
        note += ', beta folded into fc1.bias'
    plan = Plan(note)
    xb = to_nhwc(a)
    i = plan.run('%s; fc %d%s' % (input_line(xb), n, '' if c is not None else ' bias=no'), weights, xb,
                 np.zeros((m, n), np.float32))
    plan.check('y', lambda r: r[i]['output'].reshape(m, n), case.out(0))
    return plan


def conv_common(case):
    need_rank(case, 0, (4,), case.op)
    need_float(case)
    if case.int('group', 1) != 1:
        raise Skip('group=%d (cnn has no grouped convolution)' % case.int('group', 1))


def op_conv(case):
    x, w = case.inp(0), case.inp(1)
    conv_common(case)
    bias = case.inp(2) if case.n_inputs() > 2 else None
    o, i_c, kh, kw = w.shape
    s = case.ints('strides', [1, 1])
    d = case.ints('dilations', [1, 1])
    pads, same = spatial_pads(case, x.shape[2:], (kh, kw), s, d)
    pad = 'same' if same and d == [1, 1] else hw(pads)   # test cnn's own pad=same too
    cnn = 'conv %dx%dx%d stride=%s pad=%s dilation=%s bias=%s' % (kh, kw, o, hw(s), pad, hw(d),
                                                                   'yes' if bias is not None else 'no')
    weights = {'conv1.weight': w}
    if bias is not None:
        weights['conv1.bias'] = bias
    return forward_plan(case, x, cnn, weights, cnn)


def op_convtranspose(case):
    x, w = case.inp(0), case.inp(1)
    conv_common(case)
    bias = case.inp(2) if case.n_inputs() > 2 else None
    i_c, o, kh, kw = w.shape
    k = (kh, kw)
    s = case.ints('strides', [1, 1])
    d = case.ints('dilations', [1, 1])
    op = case.ints('output_padding', [0, 0])
    auto = case.str('auto_pad', 'NOTSET')
    in_hw = x.shape[2:]
    full = [(in_hw[a] - 1) * s[a] + (k[a] - 1) * d[a] + 1 for a in range(2)]   # no padding, no output padding
    out_shape = case.ints('output_shape')
    pb, pe = [0, 0], [0, 0]
    if out_shape is not None:
        # As PyTorch's ConvTranspose2d(output_size=...): keep the pads, add output padding at the end.
        if out_shape and len(out_shape) > 2:
            out_shape = out_shape[-2:]
        p = case.ints('pads', [0, 0, 0, 0])
        pb, pe = [p[0], p[1]], [p[2], p[3]]
        op = [out_shape[a] - (full[a] - pb[a] - pe[a]) for a in range(2)]
    elif auto in ('SAME_UPPER', 'SAME_LOWER'):
        for a in range(2):
            total = full[a] + op[a] - in_hw[a] * s[a]
            lo = total // 2 if auto == 'SAME_UPPER' else total - total // 2
            pb[a], pe[a] = lo, total - lo
            op[a] = 0
    elif auto != 'VALID':
        p = case.ints('pads', [0, 0, 0, 0])
        pb, pe = [p[0], p[1]], [p[2], p[3]]
    # ONNX crops pb before and pe after the full output (plus op zeros after);
    # cnn's deconv crops pad before and pad - outpad after.
    outpad = [op[a] + pb[a] - pe[a] for a in range(2)]
    for a in range(2):
        if pb[a] < 0 or outpad[a] < 0 or outpad[a] >= max(s[a], d[a]):
            raise Skip('output cropped %d before and %d after on %s (%s%s); cnn\'s deconv crops pad before and '
                       'pad-outpad after, with 0 <= outpad < max(stride, dilation)'
                       % (pb[a], pe[a] - op[a], 'HW'[a], 'auto_pad=' + auto if auto != 'NOTSET' else 'pads',
                          ', output_shape' if out_shape is not None else ''))
    cnn = 'deconv %dx%dx%d stride=%s pad=%s outpad=%s dilation=%s bias=%s' % (
        kh, kw, o, hw(s), hw(pb), hw(outpad), hw(d), 'yes' if bias is not None else 'no')
    weights = {'deconv1.weight': w}
    if bias is not None:
        weights['deconv1.bias'] = bias
    return forward_plan(case, x, cnn, weights, cnn)


def pool_layer(case, kind):
    """The cnn pool layer for a MaxPool/AveragePool case, or Skip."""
    need_rank(case, 0, (4,), case.op)
    need_float(case)
    x = case.inp(0)
    k = case.ints('kernel_shape')
    s = case.ints('strides', [1, 1])
    d = case.ints('dilations', [1, 1])
    if d != [1, 1]:
        raise Skip('pooling with dilations=%s (cnn pools have no dilation)' % ','.join(map(str, d)))
    pads, _ = spatial_pads(case, x.shape[2:], k, s, d)
    for a in range(2):
        if 2 * pads[a] > k[a]:
            raise Skip('pad %d on a %d-wide window: more than half the window (cnn, as PyTorch, allows pad <= K/2)'
                       % (pads[a], k[a]))
    if case.int('ceil_mode', 0):
        for a in range(2):
            n = x.shape[2 + a] + 2 * pads[a] - k[a]
            if n % s[a]:
                raise Skip('ceil_mode=1 adds a partial window on %s (cnn rounds output sizes down)' % 'HW'[a])
    extra = ''
    if kind == 'avgpool' and any(pads) and not case.int('count_include_pad', 0):
        extra = ' count_include_pad=no'     # ONNX's default; cnn's (PyTorch's) is yes
    return '%s %s stride=%s pad=%s%s' % (kind, hw(k), hw(s), hw(pads), extra)


def op_averagepool(case):
    return pool_forward(case, pool_layer(case, 'avgpool'))[0]


def pool_forward(case, layer):
    x = case.inp(0)
    plan = Plan(layer)
    xb = to_nhwc(x)
    shape = case.out(0).shape
    i = plan.run('%s; %s' % (input_line(xb), layer), {}, xb,
                 np.zeros((xb.shape[0], int(np.prod(shape[1:]))), np.float32))
    plan.check('y', lambda r: from_nhwc(r[i]['output'], shape), case.out(0))
    return plan, i


def op_maxpool(case):
    layer = pool_layer(case, 'pool')
    plan, _ = pool_forward(case, layer)
    if len(case.outputs) < 2:
        return plan
    # Indices: the gradient of an MSE loss whose targets sit 1 below the
    # expected outputs flows back only into the argmax locations, so
    # grad.input must be the per-output gradient scattered into the indices.
    x, y, idx = case.inp(0), case.out(0), case.out(1)
    order = case.int('storage_order', 0)
    n, c, h, w = x.shape
    plan.note += '; indices (storage_order=%d) checked through grad.input' % order
    xb = to_nhwc(x)
    target = to_nhwc(y - 1).reshape(n, -1)
    j = plan.run('%s; %s' % (input_line(xb), layer), {}, xb, target)

    def expected_grad(r):
        out = r[j]['output']
        g = (out - target) * np.float32(2.0 / out.size)     # dL/dy of the runtime's MSE, NHWC order
        g = from_nhwc(g, y.shape)
        grad = np.zeros(x.size, np.float64)
        flat = idx.reshape(-1).astype(np.int64)
        if order == 1:   # column-major within each (n, c) plane
            nc, rest = flat // (h * w), flat % (h * w)
            flat = nc * h * w + (rest % h) * w + rest // h
        np.add.at(grad, flat, g.reshape(-1))
        return grad.reshape(x.shape)

    plan.check('indices (as grad.input)', lambda r: from_nhwc(r[j]['grad.input'].reshape(n, -1), x.shape),
               expected_grad)
    return plan


def op_globalaveragepool(case):
    need_rank(case, 0, (4,), case.op)
    need_float(case)
    return pool_forward(case, 'globalavgpool')[0]


def op_maxunpool(case):
    need_rank(case, 0, (4,), case.op)
    xt, xi = case.inp(0), case.inp(1).astype(np.int64)
    k = case.ints('kernel_shape')
    s = case.ints('strides', [1, 1])
    p = case.ints('pads', [0, 0, 0, 0])
    if any(p):
        raise Skip('MaxUnpool with pads (cnn\'s unpool pairs with an unpadded pool here)')
    n, c, h, w = xt.shape
    dh, dw = (h - 1) * s[0] + k[0], (w - 1) * s[1] + k[1]      # the default output shape
    oh, ow = dh, dw
    if case.n_inputs() > 2:
        oh, ow = [int(v) for v in case.inp(2)[-2:]]
        if oh < dh or ow < dw:
            raise Skip('output_shape smaller than the unpooled size')
    # The indices address the default-shaped output (ONNX's reference scatters
    # there and pads to output_shape at the end).  cnn's unpool scatters into
    # its pool's argmax: build a pool input whose argmax are these indices.
    if (oh - k[0]) // s[0] + 1 != h or (ow - k[1]) // s[1] + 1 != w:
        raise Skip('a %dx%d max pool on %dx%d does not give %dx%d' % (k[0], k[1], oh, ow, h, w))
    fill = np.float32(xt.min() - 1)
    xin = np.full((n, c, oh, ow), fill, np.float32)
    pos = {}
    for ni in range(n):
        for ci in range(c):
            for yi in range(h):
                for xj in range(w):
                    f = int(xi[ni, ci, yi, xj])
                    fn, rest = divmod(f, c * dh * dw)
                    fc, rest = divmod(rest, dh * dw)
                    py, px = divmod(rest, dw)
                    if (fn, fc) != (ni, ci) or not (yi * s[0] <= py < yi * s[0] + k[0]
                                                    and xj * s[1] <= px < xj * s[1] + k[1]):
                        raise Skip('index %d is outside its pooling window; cnn\'s unpool scatters only to '
                                   'argmax locations of its pool' % f)
                    xin[ni, ci, py, px] = xt[ni, ci, yi, xj]
                    pos[(ni, ci, yi, xj)] = (py, px)
    for (ni, ci, yi, xj), (py, px) in pos.items():   # each window's first maximum must be that location
        win = xin[ni, ci, yi * s[0]:yi * s[0] + k[0], xj * s[1]:xj * s[1] + k[1]]
        a = np.unravel_index(int(np.argmax(win)), win.shape)
        if (a[0] + yi * s[0], a[1] + xj * s[1]) != (py, px):
            raise Skip('the indices are not what a max pool would pick (overlapping windows)')
    layer = 'pool %s stride=%s; unpool' % (hw(k), hw(s))
    plan = Plan('%s on a %dx%d input built to put the values at the indices' % (layer, oh, ow))
    xb = to_nhwc(xin)
    shape = case.out(0).shape
    i = plan.run('%s; %s' % (input_line(xb), layer), {}, xb,
                 np.zeros((n, int(np.prod(shape[1:]))), np.float32))
    plan.check('y', lambda r: from_nhwc(r[i]['output'], shape), case.out(0))
    return plan


def op_batchnormalization(case):
    x = case.inp(0)
    if x.ndim not in (2, 3, 4):
        raise Skip('rank-%d input' % x.ndim)
    inference = not case.int('training_mode', 0)     # running statistics: `trace --eval`
    eps = case.float('epsilon', 1e-5)
    m_onnx = case.float('momentum', 0.9)
    momentum = round(1.0 - m_onnx, 12)     # ONNX keeps m of the old statistics, PyTorch replaces m
    scale, bias, mean, var = (case.inp(i) for i in range(1, 5))
    weights = {'bn1.weight': scale, 'bn1.bias': bias, 'bn1.running_mean': mean, 'bn1.running_var': var}
    layer = 'batchnorm eps=%s momentum=%s' % (fnum(eps), repr(momentum))
    plan = Plan(layer + '; running_var compared as PyTorch keeps it (unbiased batch variance)')
    xb = to_nhwc(x)
    shape = case.out(0).shape
    i = plan.run('%s; %s' % (input_line(xb), layer), weights, xb,
                 np.zeros((xb.shape[0], int(np.prod(shape[1:]))), np.float32), eval_mode=inference)
    plan.check('y', lambda r: from_nhwc(r[i]['output'], shape), case.out(0))
    if inference:
        return plan
    if len(case.outputs) > 1:
        plan.check('running_mean', lambda r: r[i]['after.bn1.running_mean'], case.out(1))
    if len(case.outputs) > 2:
        # ONNX's running variance uses the biased batch variance, PyTorch's
        # (SPEC §3) the unbiased one: convert the expected value.
        cnt = x.size // x.shape[1]
        v64 = var.astype(np.float64)
        batch_var = (case.out(2).astype(np.float64) - m_onnx * v64) / (1 - m_onnx)
        want = m_onnx * v64 + (1 - m_onnx) * batch_var * cnt / (cnt - 1)
        plan.check('running_var', lambda r: r[i]['after.bn1.running_var'], want.astype(np.float32))
    return plan


def op_dropout(case):
    training = case.inp(2) if case.n_inputs() > 2 else None
    if training is None or not bool(training):
        ratio = case.inp(1) if case.n_inputs() > 1 else case.float('ratio', 0.5)
        return op_activation(case, 'dropout %s' % fnum(float(np.asarray(ratio))), eval_mode=True)
    raise Skip('training-mode Dropout draws a random mask that cnn cannot reproduce')


def op_softmaxcrossentropyloss(case):
    x, labels = case.inp(0), case.inp(1).astype(np.int64)
    if x.ndim != 2:
        raise Skip('rank-%d scores (cnn\'s cross-entropy takes one score per class)' % x.ndim)
    if case.n_inputs() > 2:
        raise Skip('per-class weights (cnn\'s cross-entropy has no class weights)')
    if 'ignore_index' in case.attrs and (labels == case.int('ignore_index', 0)).any():
        raise Skip('ignore_index labels (cnn\'s cross-entropy has no ignored labels)')
    if len(case.outputs) > 1:
        raise Skip('log_prob output (the trace writes the loss, not the log-probabilities)')
    reduction = case.str('reduction', 'mean')
    n, k = x.shape
    # flatten (a copy here) keeps softmax from being the only layer: cnnc folds
    # a trailing softmax into the cross-entropy only when a layer precedes it.
    cnn = 'input 1x1x%d; flatten; softmax' % k
    plan = Plan('%s; loss crossentropy (softmax folded), reduction %s' % (cnn, reduction))
    xb = to_nhwc(x)
    if reduction == 'none':     # one batch per example
        runs = [plan.run(cnn, {}, xb[b:b + 1], labels[b:b + 1], loss='crossentropy') for b in range(n)]
        plan.note += ' as one batch of one per example'
        plan.check('z', lambda r: np.array([r[j]['loss'][0] for j in runs]), case.out(0))
    else:
        i = plan.run(cnn, {}, xb, labels, loss='crossentropy')
        factor = n if reduction == 'sum' else 1
        if reduction == 'sum':
            plan.note += ' = batch mean x %d' % n
        plan.check('z', lambda r: np.float32(r[i]['loss'][0] * factor), case.out(0))
    return plan


OPS = {
    'Relu': op_relu, 'Sigmoid': op_sigmoid, 'Tanh': op_tanh, 'LeakyRelu': op_leakyrelu,
    'Softmax': op_softmax, 'Flatten': op_flatten, 'Gemm': op_gemm, 'Conv': op_conv,
    'ConvTranspose': op_convtranspose, 'MaxPool': op_maxpool, 'AveragePool': op_averagepool,
    'GlobalAveragePool': op_globalaveragepool, 'MaxUnpool': op_maxunpool,
    'BatchNormalization': op_batchnormalization, 'Dropout': op_dropout,
    'SoftmaxCrossEntropyLoss': op_softmaxcrossentropyloss,
}


# ---------------------------------------------------------------------------
# building and running

class Builder:
    def __init__(self, work):
        self.cnnc = os.path.join(ROOT, 'build', 'cnnc')
        h = hashlib.sha1()
        for f in (self.cnnc, os.path.join(ROOT, 'build', 'libcnnrt.a')):
            with open(f, 'rb') as fh:
                h.update(fh.read())
        self.tool_hash = h.hexdigest()
        # WORK/exe/<cnnc and runtime hash>/m<model hash>: a new compiler starts a new cache.
        top = os.path.join(work, 'exe')
        self.exe_dir = os.path.join(top, self.tool_hash[:12])
        os.makedirs(self.exe_dir, exist_ok=True)
        for d in os.listdir(top):
            if d != self.tool_hash[:12]:
                shutil.rmtree(os.path.join(top, d), ignore_errors=True)
        self.lock = threading.Lock()
        self.locks = {}

    def exe(self, cnn):
        """The executable of a model text, built once per text and compiler (EXE_DIR/m<hash>)."""
        key = hashlib.sha1(cnn.encode()).hexdigest()[:16]
        exe = os.path.join(self.exe_dir, 'm' + key)
        with self.lock:
            lock = self.locks.setdefault(key, threading.Lock())
        with lock:
            if os.path.exists(exe):
                return exe, None
            src = exe + '.cnn'
            with open(src, 'w') as f:
                f.write(cnn)
            tmp = '%s.tmp.%d' % (exe, os.getpid())
            p = subprocess.run([self.cnnc, 'build', src, '-o', tmp], capture_output=True, text=True)
            if p.returncode != 0 or not os.path.exists(tmp):
                return None, 'cnnc build failed (exit %d): %s' % (p.returncode, (p.stderr or p.stdout).strip())
            os.replace(tmp, exe)
            return exe, None


def save_npz(path, arrays):
    np.savez(path, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})


def execute(plan, case_dir, builder):
    """Build and trace every run of the plan; returns the traces or an error string."""
    if os.path.isdir(case_dir):
        shutil.rmtree(case_dir)
    os.makedirs(case_dir)
    results = []
    for n, run in enumerate(plan.runs):
        suffix = '' if len(plan.runs) == 1 else str(n)
        with open(os.path.join(case_dir, 'model%s.cnn' % suffix), 'w') as f:
            f.write(run.cnn)
        exe, err = builder.exe(run.cnn)
        if err:
            return None, err
        w = os.path.join(case_dir, 'w%s.npz' % suffix)
        b = os.path.join(case_dir, 'b%s.npz' % suffix)
        t = os.path.join(case_dir, 't%s.npz' % suffix)
        save_npz(w, {k: np.asarray(v, np.float32) for k, v in run.weights.items()})
        save_npz(b, {'x': run.x, 'y': run.y})
        cmd = [exe, 'trace', '--init', w, '--batch', b, '--steps', '0', '--out', t, '--threads', '1']
        if run.eval_mode:
            cmd.append('--eval')
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            return None, 'trace failed (exit %d): %s' % (p.returncode, (p.stderr or p.stdout).strip())
        with np.load(t) as d:
            results.append({k: d[k] for k in d.files})
    return results, None


def compare(label, got, want):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    if got.shape != want.shape:
        return False, '%s: shape %s, expected %s' % (label, got.shape, want.shape), 0.0
    if got.size == 0:
        return True, '', 0.0
    scale = float(np.abs(want).max())
    tol = RTOL * scale + ATOL
    diff = np.abs(got - want)
    diff = np.where(np.isnan(diff), np.inf, diff)
    where = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    md = float(diff[where]) if diff.ndim else float(diff)
    if md <= tol:
        return True, '', md
    bad = int((diff > tol).sum())
    at = '[%s]' % ','.join(map(str, where))
    return False, ('%s: maxdiff %.3g at %s (got %.9g, expected %.9g; tolerance %.3g; %d of %d values off)'
                   % (label, md, at, float(got[where]) if got.ndim else float(got),
                      float(want[where]) if want.ndim else float(want), tol, bad, diff.size)), md


def do_case(folder, work, builder):
    """-> (status, name, message, note)."""
    try:
        return run_case(folder, work, builder)
    except Exception as e:     # a bug of this runner must not hide the other cases
        return 'FAIL', os.path.basename(folder), 'runner error: %s: %s' % (type(e).__name__, e), ''


def run_case(folder, work, builder):
    try:
        case = Case(folder)
    except (OSError, ValueError, KeyError, IndexError) as e:
        return 'FAIL', os.path.basename(folder), 'cannot read the case: %s' % e, ''
    fn = OPS.get(case.op)
    if fn is None:
        return 'SKIP', case.name, 'operator %s is not a cnn layer' % case.op, ''
    try:
        plan = fn(case)
    except Skip as e:
        return 'SKIP', case.name, str(e), ''
    results, err = execute(plan, os.path.join(work, 'cases', case.name), builder)
    if err:
        return 'FAIL', case.name, err, plan.note
    msgs, worst = [], []
    for label, got_fn, want in plan.checks:
        got = got_fn(results)
        if callable(want):
            want = want(results)
        ok, msg, md = compare(label, got, want)
        worst.append('%s maxdiff %.3g' % (label, md))
        if not ok:
            msgs.append(msg)
    if msgs:
        return 'FAIL', case.name, '; '.join(msgs), plan.note
    return 'PASS', case.name, '', plan.note + ' (' + ', '.join(worst) + ')'


def main():
    ap = argparse.ArgumentParser(description='ONNX operator conformance runner for cnnc')
    ap.add_argument('-v', '--verbose', action='store_true')
    ap.add_argument('-j', '--jobs', type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument('--cases', default=os.environ.get('ONNX_CASES') or os.path.join(ROOT, '..', 'shared', 'onnx-cases'))
    ap.add_argument('--work', default=os.path.join(ROOT, 'build', 'onnx'))
    ap.add_argument('only', nargs='*', help='run only cases whose name contains one of these')
    args = ap.parse_args()

    if not os.path.isdir(args.cases):
        sys.exit('run_onnx: no case folders at %s (set ONNX_CASES or --cases)' % args.cases)
    for f in ('cnnc', 'libcnnrt.a'):
        if not os.path.exists(os.path.join(ROOT, 'build', f)):
            sys.exit('run_onnx: build/%s is missing; run make first' % f)
    folders = sorted(os.path.join(args.cases, d) for d in os.listdir(args.cases)
                     if os.path.isfile(os.path.join(args.cases, d, 'case.txt')))
    if args.only:
        folders = [f for f in folders if any(s in os.path.basename(f) for s in args.only)]
    builder = Builder(args.work)
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(lambda f: do_case(f, args.work, builder), folders))
    counts = {'PASS': 0, 'SKIP': 0, 'FAIL': 0}
    for status, name, msg, note in results:
        counts[status] += 1
        line = '%s %s' % (status, name) + (': ' + msg if msg else '')
        print(line)
        if args.verbose and note:
            print('    ' + note)
    print('onnx: %d passed, %d skipped, %d failed' % (counts['PASS'], counts['SKIP'], counts['FAIL']))
    return 1 if counts['FAIL'] else 0


if __name__ == '__main__':
    sys.exit(main())
