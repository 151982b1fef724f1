#!/usr/bin/python3
"""self_check.py -- proves the PyTorch reference harness right without the C side.

Checks, each printed as `ok NAME` or `FAIL NAME: why`:
  - the parser's shapes and counts against the SPEC's worked numbers
    (assignment model 280/1820/1810, 205x205x10 conv 96,096 and 418,176,000, LeNet-5 61,706);
  - state_dict names and layouts, NHWC input, C,H,W flatten order for fc;
  - `flip` computes a true convolution (kernel rotated 180 degrees), checked by hand;
  - the course's max-pool / unpool example and bracket-style pool/unpool pairing;
  - pad=same, avgpool count_include_pad, leakyrelu default, softmax folding;
  - autograd gradients against central finite differences in float64 for every model in models/;
  - one optimizer step of sgd / momentum / adam and the batchnorm running stats, recomputed by hand;
  - the trace contract (names, steps=0, dropout refused) and that `compare` catches a wrong array.
Prints `N passed, M failed`; exits 1 on any failure.
"""

import glob
import io
import os
import sys
import tempfile
import time
import traceback
from contextlib import redirect_stdout, redirect_stderr

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True          # keep tests/ref free of __pycache__
sys.path.insert(0, HERE)
import torch                                     # noqa: E402
import torch.nn.functional as F                  # noqa: E402
import cnnmodel                                  # noqa: E402
import reference                                 # noqa: E402

MODELS = sorted(glob.glob(os.path.join(HERE, "models", "*.cnn")))
RESULTS = []


def check(name):
    """Decorator: run the function as one check; AssertionError or any exception fails it."""
    def wrap(fn):
        try:
            fn()
            RESULTS.append(True)
            print(f"ok {name}")
        except AssertionError as e:
            RESULTS.append(False)
            print(f"FAIL {name}: {e}")
        except Exception:
            RESULTS.append(False)
            print(f"FAIL {name}: exception\n{traceback.format_exc()}")
        return fn
    return wrap


def close(a, b, tol=1e-6):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and np.allclose(a, b, rtol=tol, atol=tol)


def net_for(text, weights=None, dtype=torch.float64):
    m = cnnmodel.parse_text(text, "check.cnn")
    net = cnnmodel.CnnNet(m).to(dtype)
    if weights is not None:
        cnnmodel.load_weights(net, weights)
    return m, net


# ---------------------------------------------------------------- parser and shapes

ASSIGNMENT = ("input 32x32x3; conv 3x3x10 pad=1; relu; pool 2; conv 3x3x20 stride=3 pad=2; relu; "
              "pool 2; flatten; fc 10")


@check("assignment model: shapes and parameters 280, 1820, 1810 (total 3910), MACs 343,080")
def _():
    m = cnnmodel.parse_text(ASSIGNMENT)
    shapes = [str(l.out) for l in m.layers]
    assert shapes == ["32x32x10", "32x32x10", "16x16x10", "6x6x20", "6x6x20", "3x3x20", "180", "10"], shapes
    params = [cnnmodel.layer_params(l)[0] for l in m.layers if l.name]
    assert params == [280, 1820, 1810], params
    macs = [cnnmodel.layer_macs(l) for l in m.layers if l.name]
    assert macs == [276480, 64800, 1800], macs
    net = cnnmodel.CnnNet(m)
    assert sum(p.numel() for p in net.parameters()) == 3910
    out = net(torch.zeros(2, 32, 32, 3))
    assert tuple(out.shape) == (2, 10), out.shape


@check("205x205x10 conv 10x10x96 stride=3: 66x66x96, 96,096 parameters, 418,176,000 MACs")
def _():
    m = cnnmodel.parse_text("input 205x205x10; conv 10x10x96 stride=3")
    l = m.layers[0]
    assert str(l.out) == "66x66x96", l.out
    assert cnnmodel.layer_params(l) == (96096, 0)
    assert cnnmodel.layer_macs(l) == 418176000


@check("SPEC's lenet5 (comments, ';', newlines): 61,706 parameters, name from 'model'")
def _():
    text = """# comment to end of line
model lenet5                      # optional; default: the file's stem
input 28x28x1                     # H x W x C  (HxW means C=1)
conv 5x5x6 pad=2; relu; pool 2    # ';' or newline ends a statement
conv 5x5x16
relu
pool 2
fc 120; relu; fc 84; relu; fc 10  # fc flattens implicitly
"""
    m = cnnmodel.parse_text(text, "x/net.cnn")
    assert m.name == "lenet5"
    assert sum(cnnmodel.layer_params(l)[0] for l in m.layers) == 61706
    assert m.outputs == 10
    assert cnnmodel.parse_text("input 4x4; fc 2", "x/net.cnn").name == "net"


@check("settings lines: optimizer, batch, epochs, loss; flags override field by field")
def _():
    m = cnnmodel.parse_text("input 4x4\nfc 2\noptimizer sgd lr=0.5 momentum=0.7\nbatch 16\nepochs 3\nloss mse")
    assert (m.batch, m.epochs, m.loss) == (16, 3, "mse")
    s = cnnmodel.optimizer_settings(m)
    assert s == {"kind": "sgd", "lr": 0.5, "momentum": 0.7}, s
    s = cnnmodel.optimizer_settings(m, lr=0.1)
    assert s["lr"] == 0.1 and s["momentum"] == 0.7
    s = cnnmodel.optimizer_settings(m, "adam")
    assert s == {"kind": "adam", "lr": 0.5, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, s
    d = cnnmodel.optimizer_settings(cnnmodel.parse_text("input 4x4; fc 2"))
    assert d == {"kind": "adam", "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, d
    d = cnnmodel.optimizer_settings(cnnmodel.parse_text("input 4x4; fc 2; optimizer momentum lr=0.1"))
    assert d == {"kind": "momentum", "lr": 0.1, "momentum": 0.9}, d


@check("pad=same: stride 1 -> d*(k-1)/2; stride 2 -> out ceil(H/S), total pad split evenly")
def _():
    m = cnnmodel.parse_text("input 10x10x1; conv 3x3x1 pad=same; conv 5x5x1 pad=same dilation=2; "
                            "conv 4x4x1 pad=same stride=2; conv 3x3x1 pad=same stride=2")
    pads = [l.p["pad"] for l in m.layers]
    outs = [str(l.out) for l in m.layers]
    assert pads == [(1, 1), (4, 4), (1, 1), (1, 1)], pads
    assert outs == ["10x10x1", "10x10x1", "5x5x1", "3x3x1"], outs
    try:
        cnnmodel.parse_text("input 10x10x1; conv 3x3x1 pad=same stride=2")   # total 1: odd
        raise AssertionError("odd total padding accepted")
    except cnnmodel.CnnError:
        pass


# ---------------------------------------------------------------- names, layouts, layout of x

@check("state_dict names and layouts: conv [out,in,kh,kw], deconv [in,out,kh,kw], fc [out,in], bn; dense is fc")
def _():
    m, net = net_for("input 8x8x3; conv 3x3x4; batchnorm; deconv 2x2x5 stride=2; conv 1x1x2 bias=no; "
                     "dense 6; batchnorm; fc 3")
    shapes = {k: tuple(v.shape) for k, v in cnnmodel.tensor_dict(net).items()}
    want = {"conv1.weight": (4, 3, 3, 3), "conv1.bias": (4,),
            "bn1.weight": (4,), "bn1.bias": (4,), "bn1.running_mean": (4,), "bn1.running_var": (4,),
            "deconv1.weight": (4, 5, 2, 2), "deconv1.bias": (5,),
            "conv2.weight": (2, 5, 1, 1),
            "fc1.weight": (6, 2 * 12 * 12), "fc1.bias": (6,),
            "bn2.weight": (6,), "bn2.bias": (6,), "bn2.running_mean": (6,), "bn2.running_var": (6,),
            "fc2.weight": (3, 6), "fc2.bias": (3,)}
    assert shapes == want, shapes
    assert list(shapes) == list(want), list(shapes)     # layer order
    assert cnnmodel.trainable_names(net) == [k for k in want if "running" not in k]


@check("input is NHWC and fc flattens in C,H,W order")
def _():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 3, 4))                 # B,H,W,C
    w = rng.standard_normal((1, 24))
    _, net = net_for("input 2x3x4; fc 1 bias=no", {"fc1.weight": w})
    got = net(torch.tensor(x)).detach().numpy()
    want = np.array([[sum(w[0, c * 6 + h * 3 + ww] * x[b, h, ww, c]
                          for c in range(4) for h in range(2) for ww in range(3))] for b in range(2)])
    assert close(got, want), (got, want)
    # HxW input: [B,H,W] and [B,H,W,1] both accepted
    _, net = net_for("input 2x2; fc 1 bias=no", {"fc1.weight": np.ones((1, 4))})
    assert close(net(torch.ones(1, 2, 2, dtype=torch.float64)).detach(), [[4.0]])
    assert close(net(torch.ones(1, 2, 2, 1, dtype=torch.float64)).detach(), [[4.0]])


# ---------------------------------------------------------------- flip

def true_conv_numpy(x, k, stride=1, pad=0):
    """out[i,j] = sum_ab xpad[i*s + a, j*s + b] * k[kh-1-a, kw-1-b] (kernel rotated 180)."""
    xp = np.pad(x, pad)
    kh, kw = k.shape
    oh = (xp.shape[0] - kh) // stride + 1
    ow = (xp.shape[1] - kw) // stride + 1
    out = np.zeros((oh, ow))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    out[i, j] += xp[i * stride + a, j * stride + b] * k[kh - 1 - a, kw - 1 - b]
    return out


@check("flip: true convolution with an asymmetric kernel, by hand (also stride 2, pad 1)")
def _():
    x = np.arange(1, 26, dtype=np.float64).reshape(5, 5)
    k = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 9]], dtype=np.float64)
    w = {"conv1.weight": k.reshape(1, 1, 3, 3), "conv1.bias": np.zeros(1)}
    for opts, s, p in [("", 1, 0), (" stride=2 pad=1", 2, 1)]:
        _, net = net_for(f"input 5x5; conv 3x3x1 flip{opts}", w)
        got = net(torch.tensor(x).reshape(1, 5, 5, 1)).detach().numpy()
        want = true_conv_numpy(x, k, s, p).reshape(1, -1)
        assert close(got, want), (opts, got, want)
        _, plain = net_for(f"input 5x5; conv 3x3x1{opts}", w)
        other = plain(torch.tensor(x).reshape(1, 5, 5, 1)).detach().numpy()
        assert not close(other, want), "flip made no difference"
    # the course's lab5 numbers: X[r,c]=5r+c+1, F=[0 1;2 3]; cross-corr 30i+6j+35, rotated 30i+6j+13
    f = {"conv1.weight": np.array([[[[0, 1], [2, 3]]]], np.float64)}
    i, j = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    _, net = net_for("input 5x5; conv 2x2x1 bias=no", f)
    assert close(net(torch.tensor(x).reshape(1, 5, 5, 1)).detach().reshape(4, 4), 30 * i + 6 * j + 35)
    _, net = net_for("input 5x5; conv 2x2x1 bias=no flip", f)
    assert close(net(torch.tensor(x).reshape(1, 5, 5, 1)).detach().reshape(4, 4), 30 * i + 6 * j + 13)


# ---------------------------------------------------------------- pool / unpool

M = np.array([[2, 1, -11, 0], [0, 10, -15, -16], [23, 100, 2, 3], [-23, 0, 7, 20]], np.float64)


@check("course example: pool 2 of M -> [10 0; 100 20]; unpool of [1 2; 3 4] -> [0 0 0 2; 0 1 0 0; 0 3 0 0; 0 0 0 4]")
def _():
    _, net = net_for("input 4x4; pool 2")
    assert close(net(torch.tensor(M).reshape(1, 4, 4)).detach(), [[10, 0, 100, 20]])
    _, idx = F.max_pool2d(torch.tensor(M).reshape(1, 1, 4, 4), 2, return_indices=True)
    assert idx.reshape(-1).tolist() == [5, 3, 9, 15], idx
    pool = cnnmodel.parse_text("input 4x4; pool 2").layers[0]
    up = cnnmodel.unpool(torch.tensor([[1.0, 2], [3, 4]], dtype=torch.float64).reshape(1, 1, 2, 2),
                         idx, pool, (4, 4))
    want = [[0, 0, 0, 2], [0, 1, 0, 0], [0, 3, 0, 0], [0, 0, 0, 4]]
    assert close(up.reshape(4, 4), want), up
    # through the model: pool; unpool scatters the pooled maxima back
    _, net = net_for("input 4x4; pool 2; unpool")
    assert close(net(torch.tensor(M).reshape(1, 4, 4)).detach().reshape(4, 4),
                 [[0, 0, 0, 0], [0, 10, 0, 0], [0, 100, 0, 0], [0, 0, 0, 20]])
    # and the gradient through pool alone is the same scatter (unpool = max-pool backward)
    xm = torch.tensor(M).reshape(1, 4, 4).requires_grad_()
    _, net = net_for("input 4x4; pool 2")
    net(xm).backward(torch.tensor([[1.0, 2, 3, 4]], dtype=torch.float64))
    assert close(xm.grad.reshape(4, 4), want), xm.grad


@check("unpool pairing nests like brackets (pool 2, pool 3, unpool, unpool) and matches MaxUnpool2d")
def _():
    m, net = net_for("input 12x12x2; pool 2; pool 3; unpool; unpool")
    assert [str(l.out) for l in m.layers] == ["6x6x2", "2x2x2", "6x6x2", "12x12x2"]
    assert [l.pair for l in m.layers] == [-1, -1, 1, 0]
    x = torch.randn(3, 12, 12, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    xc = x.permute(0, 3, 1, 2)
    a, ia = F.max_pool2d(xc, 2, return_indices=True)
    b, ib = F.max_pool2d(a, 3, return_indices=True)
    want = F.max_unpool2d(F.max_unpool2d(b, ib, 3, output_size=(6, 6)), ia, 2, output_size=(12, 12))
    assert close(net(x).detach(), want.permute(0, 2, 3, 1).flatten(1))   # outputs are NHWC
    m = cnnmodel.parse_text("input 8x8; pool 2; unpool; pool 2; unpool; pool 2")
    assert [l.pair for l in m.layers] == [-1, 0, -1, 2, -1]


@check("unpool after overlapping pool (3 stride 2 pad 1): shared argmax -> the row-major last window wins; backward gathers")
def _():
    x = torch.tensor([[1.0, 0, 0, 0, 5], [0, 9, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [2, 0, 0, 0, 0]],
                     dtype=torch.float64)
    m, net = net_for("input 5x5; pool 3 stride=2 pad=1; unpool")
    assert cnnmodel.unpool_overlaps(m)
    out = net(x.reshape(1, 5, 5)).reshape(5, 5)     # each maximum written once, not summed
    assert out[1, 1] == 9.0 and out[0, 4] == 5.0 and out[4, 0] == 2.0 and out.abs().sum() == 16.0, out
    # forward with distinct values per window: the last window in row-major order wins
    _, idx = F.max_pool2d(x.reshape(1, 1, 5, 5), 3, 2, 1, return_indices=True)
    pool = m.layers[0]
    vals = torch.arange(1.0, 10.0, dtype=torch.float64).reshape(1, 1, 3, 3)
    up = cnnmodel.unpool(vals, idx, pool, (5, 5)).reshape(5, 5)
    assert idx.reshape(-1)[:5].tolist() == [6, 6, 4, 6, 6], idx     # 9 at flat 6 wins 4 windows
    assert up[1, 1] == 5.0, up                                       # window (1,1) = value 5 is the last
    # backward: each window gathers the gradient at its argmax (torch's max_unpool2d backward)
    vg = vals.clone().requires_grad_()
    g = torch.arange(25.0, dtype=torch.float64).reshape(1, 1, 5, 5)
    cnnmodel.unpool(vg, idx, pool, (5, 5)).backward(g)
    assert close(vg.grad.reshape(-1), g.reshape(-1)[idx.reshape(-1)]), vg.grad


# ---------------------------------------------------------------- other layer semantics

@check("avgpool pad counts the padding (divisor K*K); globalavgpool is the mean")
def _():
    _, net = net_for("input 3x3; avgpool 3 stride=1 pad=1")
    x = torch.arange(1.0, 10.0, dtype=torch.float64).reshape(1, 3, 3)
    got = net(x).detach().reshape(3, 3)
    assert abs(float(got[0, 0]) - (1 + 2 + 4 + 5) / 9) < 1e-12, got
    assert abs(float(got[1, 1]) - 5.0) < 1e-12, got
    _, net = net_for("input 3x3x2; globalavgpool")
    x = torch.arange(18.0, dtype=torch.float64).reshape(1, 3, 3, 2)
    assert close(net(x).detach(), [[8.0, 9.0]])


@check("leakyrelu default slope 0.01; softmax over channels; trailing softmax folded only for crossentropy")
def _():
    m, net = net_for("input 1x1x2; leakyrelu; leakyrelu 0.5")
    assert close(net(torch.tensor([[[[-1.0, 2.0]]]], dtype=torch.float64)).detach(), [[-0.005, 2.0]])
    _, net = net_for("input 2x2x3; softmax; loss mse")
    out = net(torch.randn(1, 2, 2, 3, dtype=torch.float64)).detach().reshape(4, 3)   # NHWC: pixel, channel
    assert close(out.sum(1), np.ones(4)), out
    m = cnnmodel.parse_text("input 2x2; fc 3; softmax")
    assert m.layers[-1].folded and len(cnnmodel.CnnNet(m).layers) == 1
    m = cnnmodel.parse_text("input 2x2; fc 3; softmax; loss mse")
    assert not m.layers[-1].folded and len(cnnmodel.CnnNet(m).layers) == 2
    m = cnnmodel.parse_text("input 2x2; fc 3; softmax; fc 2")
    assert not any(l.folded for l in m.layers)


@check("batchnorm: BatchNorm2d on 4-D, BatchNorm1d on flat; momentum/eps; running stats by hand")
def _():
    m, net = net_for("input 2x2x3; batchnorm momentum=0.2 eps=0.01; fc 4; batchnorm")
    assert type(net.bn1).__name__ == "BatchNorm2d" and type(net.bn2).__name__ == "BatchNorm1d"
    assert (net.bn1.momentum, net.bn1.eps, net.bn2.momentum, net.bn2.eps) == (0.2, 0.01, 0.1, 1e-5)
    net.train()
    x = torch.randn(5, 2, 2, 3, dtype=torch.float64)
    out = net.bn1(x.permute(0, 3, 1, 2))
    xc = x.numpy().reshape(-1, 3)
    mean, var_b, var_u = xc.mean(0), xc.var(0), xc.var(0, ddof=1)
    assert close(net.bn1.running_mean.detach(), 0.2 * mean)
    assert close(net.bn1.running_var.detach(), 0.8 + 0.2 * var_u)
    want = (xc - mean) / np.sqrt(var_b + 0.01)
    assert close(out.permute(0, 2, 3, 1).reshape(-1, 3).detach(), want)


# ---------------------------------------------------------------- gradients vs finite differences

def fd_check(path, per_tensor=6, steps=(1e-5, 1e-6, 1e-7)):
    """Central differences of the float64 loss for a few entries of every trainable tensor.
    Passes when |g - fd| <= 1e-5 * max(|g|, 1e-3 * max|grad of the tensor|) + 2e-9 (the
    absolute term is the rounding noise of a loss ~1 divided by h) for one of the step
    sizes: a ReLU or max-pool kink within h of an entry spoils the larger steps only."""
    model = cnnmodel.parse_file(path)
    w = reference.make_weights(model, 3)
    reference.randomize_bn(w, 3)
    b = reference.make_batch(model, 4, 4)
    net = cnnmodel.CnnNet(model).double()
    cnnmodel.load_weights(net, w)
    net.train()
    lossf = cnnmodel.loss_fn(model)
    x = torch.tensor(b["x"], dtype=torch.float64)
    y = torch.tensor(b["y"]) if model.loss == "crossentropy" else torch.tensor(b["y"], dtype=torch.float64)
    net.zero_grad()
    lossf(net(x), y).backward()
    rng = np.random.default_rng(0)
    worst = (0.0, "")
    for name, p in net.named_parameters():
        g = p.grad.detach().clone().reshape(-1)
        flat = p.data.reshape(-1)
        scale = 1e-3 * float(g.abs().max())
        for i in rng.choice(flat.numel(), min(per_tensor, flat.numel()), replace=False):
            old, gi = float(flat[i]), float(g[i])
            best = None
            for h in steps:
                with torch.no_grad():
                    flat[i] = old + h
                    lp = float(lossf(net(x), y))
                    flat[i] = old - h
                    lm = float(lossf(net(x), y))
                    flat[i] = old
                fd = (lp - lm) / (2 * h)
                ratio = abs(fd - gi) / (1e-5 * max(abs(gi), scale) + 2e-9)
                if best is None or ratio < best[0]:
                    best = (ratio, fd)
            if best[0] > worst[0]:
                worst = (best[0], f"{name}[{i}] autograd={gi:.9g} fd={best[1]:.9g}")
    assert worst[0] <= 1.0, f"{os.path.basename(path)}: error {worst[0]:.3g} x tolerance at {worst[1]}"


for _path in MODELS:
    _m = cnnmodel.parse_file(_path)
    if cnnmodel.has_dropout(_m):
        continue
    if cnnmodel.unpool_overlaps(_m):
        # forward keeps one of the values sharing an argmax, backward feeds all: not a derivative
        print(f"skip gradients = finite differences: {os.path.basename(_path)} (unpool after overlapping pool)")
        continue
    check(f"gradients = finite differences (float64): {os.path.basename(_path)}")(
        lambda p=_path: fd_check(p))


# ---------------------------------------------------------------- optimizers by hand

def one_step_by_hand(kind, steps=2):
    """steps of sgd/momentum/adam on fc-only, recomputed with numpy from the
    gradient of each step (torch.optim semantics: momentum buffer b = mu*b + g,
    w -= lr*b; Adam with bias correction and eps outside the square root)."""
    model = cnnmodel.parse_text("input 4x4x1; fc 3")
    w0 = reference.make_weights(model, 1)
    b = reference.make_batch(model, 2, 5)
    opt = {"sgd": {"kind": "sgd", "lr": 0.1, "momentum": 0.0},
           "momentum": {"kind": "momentum", "lr": 0.1, "momentum": 0.8},
           "adam": {"kind": "adam", "lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-3}}[kind]
    got, _ = reference.trace(model, w0, b, steps, opt, double=True)
    x = b["x"].reshape(5, 16).astype(np.float64)
    onehot = np.eye(3)[b["y"]]
    W, B = w0["fc1.weight"].astype(np.float64), w0["fc1.bias"].astype(np.float64)
    state = {}
    for t in range(1, steps + 1):
        z = x @ W.T + B
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        dz = (p - onehot) / 5
        grads = {"W": dz.T @ x, "B": dz.sum(0)}
        params = {"W": W, "B": B}
        for k in params:
            g = grads[k]
            if kind in ("sgd", "momentum"):
                buf = g if k not in state else opt["momentum"] * state[k] + g
                state[k] = buf
                params[k] = params[k] - opt["lr"] * (buf if opt["momentum"] else g)
            else:
                m_, v_ = state.get(k, (0 * g, 0 * g))
                m_ = opt["beta1"] * m_ + (1 - opt["beta1"]) * g
                v_ = opt["beta2"] * v_ + (1 - opt["beta2"]) * g * g
                state[k] = (m_, v_)
                mhat = m_ / (1 - opt["beta1"] ** t)
                vhat = v_ / (1 - opt["beta2"] ** t)
                params[k] = params[k] - opt["lr"] * mhat / (np.sqrt(vhat) + opt["eps"])
        W, B = params["W"], params["B"]
    assert close(got["after.fc1.weight"], W, 1e-9), np.abs(got["after.fc1.weight"] - W).max()
    assert close(got["after.fc1.bias"], B, 1e-9)


for _kind in ("sgd", "momentum", "adam"):
    check(f"two {_kind} steps = the update rule by hand")(lambda k=_kind: one_step_by_hand(k))


# ---------------------------------------------------------------- trace contract and compare

def run_cli(args):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = reference.main(args)
    return rc, out.getvalue() + err.getvalue()


@check("CLI: init/batch/trace names, steps=0 keeps weights, float32 ~ float64, compare catches errors")
def _():
    path = os.path.join(HERE, "models", "batchnorm-fc.cnn")
    with tempfile.TemporaryDirectory() as d:
        W, B, T, T0, TD = (os.path.join(d, n) for n in ("w.npz", "b.npz", "t.npz", "t0.npz", "td.npz"))
        assert run_cli(["init", path, "--seed", "1", "--out", W])[0] == 0
        assert run_cli(["batch", path, "--seed", "2", "--size", "6", "--out", B])[0] == 0
        w, b = np.load(W), np.load(B)
        assert all(w[k].dtype == np.float32 for k in w.files)
        assert b["x"].shape == (6, 6, 6, 1) and b["x"].dtype == np.float32
        assert b["y"].dtype == np.int64 and b["y"].min() >= 0 and b["y"].max() < 3
        assert run_cli(["trace", path, "--init", W, "--batch", B, "--steps", "2", "--out", T, "--quiet"])[0] == 0
        t = np.load(T)
        want = (["output", "loss"] + ["grad." + k for k in w.files if "running" not in k]
                + ["losses"] + ["after." + k for k in w.files])
        assert t.files == want, t.files
        assert t["output"].shape == (6, 3) and t["loss"].shape == (1,) and t["loss"].dtype == np.float32
        assert t["losses"].shape == (2,) and t["losses"][0] == t["loss"][0]
        assert not close(t["after.bn2.running_mean"], w["bn2.running_mean"])
        run_cli(["trace", path, "--init", W, "--batch", B, "--steps", "0", "--out", T0, "--quiet"])
        t0 = np.load(T0)
        assert all(np.array_equal(t0["after." + k], w[k]) for k in w.files)
        run_cli(["trace", path, "--init", W, "--batch", B, "--steps", "2", "--out", TD, "--double", "--quiet"])
        rc, text = run_cli(["compare", TD, T])
        assert rc == 0 and text.strip().endswith(f"{len(want)} passed, 0 failed"), text
        bad = {k: t[k].copy() for k in t.files}
        bad["grad.fc1.weight"][2, 7] *= 1.01
        del bad["after.fc2.bias"]
        reference.save_npz(T0, bad)
        rc, text = run_cli(["compare", T, T0])
        assert rc == 1, text
        assert "grad.fc1.weight maxdiff=" in text and " at [2,7] " in text and "FAIL" in text, text
        assert "after.fc2.bias missing" in text and text.strip().endswith(f"{len(want) - 2} passed, 2 failed"), text
        # near-zero elements are judged against the array's scale, not blown up
        reference.save_npz(T0, {"a": np.array([1.0, 1e-9])})
        reference.save_npz(T, {"a": np.array([1.0, 2e-9])})
        assert run_cli(["compare", T0, T])[0] == 0


@check("trace refuses dropout P>0 (different RNG), accepts dropout 0")
def _():
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "drop.cnn")
        with open(src, "w") as f:
            f.write("input 4x4; fc 5; dropout 0.5; fc 2\n")
        W, B, T = (os.path.join(d, n) for n in ("w.npz", "b.npz", "t.npz"))
        run_cli(["init", src, "--out", W])
        run_cli(["batch", src, "--out", B])
        rc, text = run_cli(["trace", src, "--init", W, "--batch", B, "--out", T])
        assert rc == 2 and "dropout" in text and not os.path.exists(T), (rc, text)


@check("every model in models/ parses, traces, and takes under a second")
def _():
    assert len(MODELS) >= 20, len(MODELS)
    slow = []
    for path in MODELS:
        model = cnnmodel.parse_file(path)
        with open(path) as f:
            assert f.readline().startswith("#"), f"{path}: first line must say what it covers"
        w = reference.make_weights(model, 1)
        b = reference.make_batch(model, 2, 4)
        t0 = time.time()
        opt = cnnmodel.optimizer_settings(model)
        arrays, _ = reference.trace(model, w, b, 3, opt)
        if time.time() - t0 > 1.0:
            slow.append(os.path.basename(path))
        assert arrays["output"].shape == (4, model.outputs)
        assert all(np.all(np.isfinite(v)) for v in arrays.values()), path
    assert not slow, f"slow: {slow}"


def main():
    passed, failed = RESULTS.count(True), RESULTS.count(False)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
