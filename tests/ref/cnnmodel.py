"""cnnmodel.py -- an independent PyTorch reading of the .cnn language.

This file is the reference side of cnnc's differential tests.  It parses a
.cnn file (SPEC.md section 1) with nothing shared with the C compiler, infers
every layer's shape, and builds a torch.nn.Module whose state_dict names and
layouts are the SPEC's weights-file contract (conv1.weight [out,in,kh,kw],
deconv1.weight [in,out,kh,kw], fc1.weight [out,in], bn1.running_mean, ...).

It only has to accept valid models: cnnc does the diagnostics.  Errors here
are plain exceptions (CnnError) naming file:line, enough to fix a test model.

Pipeline:  parse_file/parse_text -> Model (layers with resolved options and
shapes) -> CnnNet(model) -> forward(x NHWC) -> [B, outputs].
"""

import os
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


class CnnError(Exception):
    pass


# ---------------------------------------------------------------- shapes

@dataclass(frozen=True)
class Shape:
    """An activation per example: C x H x W, or a flat vector of n (flat=True)."""
    c: int
    h: int = 1
    w: int = 1
    flat: bool = False

    @property
    def size(self):
        return self.c * self.h * self.w

    def as_spatial(self):
        """A flat vector seen by a spatial layer is 1x1xN (as Darknet does)."""
        return Shape(self.size, 1, 1) if self.flat else self

    def __str__(self):
        return str(self.c) if self.flat else f"{self.h}x{self.w}x{self.c}"


# ---------------------------------------------------------------- model description

LAYER_WORDS = {
    # word as written -> canonical kind
    "conv": "conv", "deconv": "deconv", "pool": "pool", "maxpool": "pool",
    "avgpool": "avgpool", "globalavgpool": "globalavgpool", "unpool": "unpool",
    "fc": "fc", "dense": "fc", "flatten": "flatten", "relu": "relu",
    "sigmoid": "sigmoid", "tanh": "tanh", "leakyrelu": "leakyrelu",
    "softmax": "softmax", "dropout": "dropout", "batchnorm": "batchnorm",
}

# kind -> (allowed name=value options, allowed bare flags)
LAYER_OPTIONS = {
    "conv": ({"stride", "pad", "dilation", "bias"}, {"flip"}),
    "deconv": ({"stride", "pad", "outpad", "dilation", "bias"}, set()),
    "pool": ({"stride", "pad"}, set()),
    "avgpool": ({"stride", "pad", "count_include_pad"}, set()),
    "globalavgpool": (set(), set()),
    "unpool": (set(), set()),
    "fc": ({"bias"}, set()),
    "flatten": (set(), set()),
    "relu": (set(), set()),
    "sigmoid": (set(), set()),
    "tanh": (set(), set()),
    "leakyrelu": ({"alpha", "slope"}, set()),
    "softmax": (set(), set()),
    "dropout": ({"p", "rate"}, set()),
    "batchnorm": ({"momentum", "eps"}, set()),
}

# Parameter-holding kinds and the prefix of their state_dict names.
NAME_PREFIX = {"conv": "conv", "deconv": "deconv", "fc": "fc", "batchnorm": "bn"}

OPTIMIZER_DEFAULTS = {
    "adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "sgd": {"lr": 0.01, "momentum": 0.0},
    "momentum": {"lr": 0.01, "momentum": 0.9},
}


@dataclass
class Layer:
    kind: str                 # canonical kind (maxpool -> pool, dense -> fc)
    word: str                 # as written
    line: int
    args: list                # positional words after the layer word
    opts: dict                # name=value options, raw strings
    flags: set                # bare flags (flip)
    name: str = ""            # conv1, fc2, bn1 ... for parameter layers
    p: dict = field(default_factory=dict)   # resolved hyper-parameters
    inp: Shape = None
    out: Shape = None
    pair: int = -1            # unpool: index of its pool in Model.layers
    folded: bool = False      # trailing softmax folded into crossentropy

    def describe(self):
        return f"line {self.line}: {self.word}"


@dataclass
class Model:
    name: str
    path: str
    input: Shape = None
    layers: list = field(default_factory=list)
    optimizer: dict = field(default_factory=dict)   # {"kind": ..., "lr": ..., ...}, only what the file says
    batch: int = None
    epochs: int = None
    loss: str = "crossentropy"

    @property
    def out(self):
        live = [l for l in self.layers if not l.folded]
        return live[-1].out if live else self.input

    @property
    def outputs(self):
        return self.out.size

    def param_layers(self):
        return [l for l in self.layers if l.name]


# ---------------------------------------------------------------- parser

def _num(text, what, where):
    try:
        v = float(text)
    except ValueError:
        raise CnnError(f"{where}: {what} must be a number, got '{text}'")
    return v


def _int(text, what, where):
    v = _num(text, what, where)
    if v != int(v):
        raise CnnError(f"{where}: {what} must be a whole number, got '{text}'")
    return int(v)


def _pair(text, what, where):
    """'S' or 'SxS' (height x width) -> (h, w)."""
    parts = text.lower().split("x")
    if len(parts) == 1:
        v = _int(parts[0], what, where)
        return (v, v)
    if len(parts) == 2:
        return (_int(parts[0], what, where), _int(parts[1], what, where))
    raise CnnError(f"{where}: {what} must be N or NxN, got '{text}'")


def _bool(text, what, where):
    t = text.lower()
    if t in ("yes", "true", "1", "on"):
        return True
    if t in ("no", "false", "0", "off"):
        return False
    raise CnnError(f"{where}: {what} must be yes or no, got '{text}'")


def _statements(text):
    """Yield (line number, [tokens]) per statement: '#' starts a comment,
    ';' or a newline ends a statement."""
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]
        for stmt in line.split(";"):
            toks = stmt.split()
            if toks:
                yield lineno, toks


def parse_text(text, path="<string>", name=None):
    """Parse .cnn text into a Model with shapes resolved."""
    stem = os.path.splitext(os.path.basename(path))[0]
    m = Model(name=name or stem, path=path)
    for lineno, toks in _statements(text):
        where = f"{path}:{lineno}"
        word, rest = toks[0].lower(), toks[1:]
        if word == "model":
            if len(rest) != 1:
                raise CnnError(f"{where}: 'model' takes one name")
            m.name = rest[0]
        elif word == "input":
            if len(rest) != 1:
                raise CnnError(f"{where}: 'input' takes HxWxC or HxW")
            dims = [_int(d, "input size", where) for d in rest[0].lower().split("x")]
            if len(dims) == 2:
                dims.append(1)
            if len(dims) != 3 or min(dims) <= 0:
                raise CnnError(f"{where}: 'input' takes HxWxC or HxW")
            m.input = Shape(dims[2], dims[0], dims[1])
        elif word == "optimizer":
            m.optimizer = _parse_optimizer(rest, where)
        elif word in ("batch", "epochs"):
            if len(rest) != 1:
                raise CnnError(f"{where}: '{word}' takes one number")
            setattr(m, word, _int(rest[0], word, where))
        elif word == "loss":
            if len(rest) != 1 or rest[0].lower() not in ("crossentropy", "mse", "bce"):
                raise CnnError(f"{where}: 'loss' is crossentropy, mse or bce")
            m.loss = rest[0].lower()
        elif word in LAYER_WORDS:
            m.layers.append(_parse_layer(word, rest, lineno, where))
        else:
            raise CnnError(f"{where}: unknown statement '{toks[0]}'")
    if m.input is None:
        raise CnnError(f"{path}: missing 'input'")
    _resolve(m)
    return m


def parse_file(path):
    with open(path) as f:
        return parse_text(f.read(), path)


def _parse_optimizer(rest, where):
    if not rest or rest[0].lower() not in OPTIMIZER_DEFAULTS:
        raise CnnError(f"{where}: optimizer is sgd, momentum or adam")
    kind = rest[0].lower()
    o = {"kind": kind}
    allowed = set(OPTIMIZER_DEFAULTS[kind]) | {"lr"}
    for t in rest[1:]:
        if "=" not in t:
            raise CnnError(f"{where}: optimizer option '{t}' must be name=value")
        k, v = t.split("=", 1)
        k = k.lower()
        if k not in allowed:
            raise CnnError(f"{where}: optimizer {kind} has no option '{k}'")
        o[k] = _num(v, k, where)
    return o


def _parse_layer(word, rest, lineno, where):
    kind = LAYER_WORDS[word]
    allowed, allowed_flags = LAYER_OPTIONS[kind]
    args, opts, flags = [], {}, set()
    for t in rest:
        if "=" in t:
            k, v = t.split("=", 1)
            k = k.lower()
            if k not in allowed:
                raise CnnError(f"{where}: {word} has no option '{k}'")
            opts[k] = v
        elif t.lower() in allowed_flags:
            flags.add(t.lower())
        else:
            args.append(t)
    return Layer(kind=kind, word=word, line=lineno, args=args, opts=opts, flags=flags)


# ---------------------------------------------------------------- shape inference

def same_pad(n, k, s, d=1):
    """pad=same: output ceil(n/s); total padding max((out-1)*s + d*(k-1)+1 - n, 0),
    split evenly (cnnc rejects an odd total).  For s=1 this is d*(k-1)/2."""
    out = -(-n // s)
    total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
    if total % 2:
        raise CnnError(f"pad=same needs an odd total padding {total} (n={n} k={k} s={s} d={d})")
    return total // 2


def _pads(l, where, k, s, d, n):
    """Resolve pad=P | PxP | same | valid into (ph, pw)."""
    v = l.opts.get("pad", "0").lower()
    if v == "valid":
        return (0, 0)
    if v == "same":
        if l.kind == "deconv":
            raise CnnError(f"{where}: pad=same is not supported for deconv here")
        return (same_pad(n[0], k[0], s[0], d[0]), same_pad(n[1], k[1], s[1], d[1]))
    return _pair(v, "pad", where)


def _conv_out(n, k, s, p, d):
    """floor((n + 2p - d(k-1) - 1)/s) + 1   (SPEC section 1)."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _deconv_out(n, k, s, p, d, op):
    """(n-1)s - 2p + d(k-1) + outpad + 1   (ConvTranspose2d)."""
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def _resolve(m):
    """Options -> typed hyper-parameters, shapes, names, pool/unpool pairing,
    and the crossentropy softmax fold."""
    counts = {}
    pools = []               # stack of open pool indices
    shape = m.input
    for i, l in enumerate(m.layers):
        where = f"{m.path}:{l.line}"
        l.inp = shape
        resolve = _RESOLVE[l.kind]
        shape = resolve(l, shape, where, pools, i, m)
        if shape.size <= 0 or shape.h <= 0 or shape.w <= 0:
            raise CnnError(f"{where}: {l.word} gives an empty output {shape}")
        l.out = shape
        if l.kind in NAME_PREFIX:
            prefix = NAME_PREFIX[l.kind]
            counts[prefix] = counts.get(prefix, 0) + 1
            l.name = f"{prefix}{counts[prefix]}"
    if m.loss == "crossentropy" and m.layers and m.layers[-1].kind == "softmax":
        m.layers[-1].folded = True


def _r_conv(l, shape, where, pools, i, m):
    shape = shape.as_spatial()
    if len(l.args) != 1:
        raise CnnError(f"{where}: {l.word} takes KhxKwxN")
    dims = [_int(d, "kernel", where) for d in l.args[0].lower().split("x")]
    if len(dims) != 3:
        raise CnnError(f"{where}: {l.word} takes KhxKwxN")
    k, n = (dims[0], dims[1]), dims[2]
    s = _pair(l.opts.get("stride", "1"), "stride", where)
    d = _pair(l.opts.get("dilation", "1"), "dilation", where)
    bias = _bool(l.opts.get("bias", "yes"), "bias", where)
    p = _pads(l, where, k, s, d, (shape.h, shape.w))
    l.p = dict(k=k, n=n, stride=s, pad=p, dilation=d, bias=bias,
               flip="flip" in l.flags, cin=shape.c)
    if l.kind == "conv":
        oh = _conv_out(shape.h, k[0], s[0], p[0], d[0])
        ow = _conv_out(shape.w, k[1], s[1], p[1], d[1])
    else:
        op = _pair(l.opts.get("outpad", "0"), "outpad", where)
        l.p["outpad"] = op
        oh = _deconv_out(shape.h, k[0], s[0], p[0], d[0], op[0])
        ow = _deconv_out(shape.w, k[1], s[1], p[1], d[1], op[1])
    return Shape(n, oh, ow)


def _r_pool(l, shape, where, pools, i, m):
    shape = shape.as_spatial()
    if len(l.args) != 1:
        raise CnnError(f"{where}: {l.word} takes K")
    k = _pair(l.args[0], "pool size", where)
    s = _pair(l.opts.get("stride", l.args[0]), "stride", where)
    p = _pads(l, where, k, s, (1, 1), (shape.h, shape.w))
    l.p = dict(k=k, stride=s, pad=p,
               count_pad=_bool(l.opts.get("count_include_pad", "yes"), "count_include_pad", where))
    if l.kind == "pool":
        pools.append(i)
    return Shape(shape.c, _conv_out(shape.h, k[0], s[0], p[0], 1),
                 _conv_out(shape.w, k[1], s[1], p[1], 1))


def _r_globalavgpool(l, shape, where, pools, i, m):
    shape = shape.as_spatial()
    return Shape(shape.c, 1, 1)


def _r_unpool(l, shape, where, pools, i, m):
    if not pools:
        raise CnnError(f"{where}: unpool without a pool")
    l.pair = pools.pop()
    pool = m.layers[l.pair]
    shape = shape.as_spatial()
    if (shape.c, shape.h, shape.w) != (pool.out.c, pool.out.h, pool.out.w):
        raise CnnError(f"{where}: unpool input {shape} differs from its pool's output {pool.out}")
    return pool.inp.as_spatial()


def _r_fc(l, shape, where, pools, i, m):
    if len(l.args) != 1:
        raise CnnError(f"{where}: {l.word} takes N")
    l.p = dict(n=_int(l.args[0], "fc size", where), cin=shape.size,
               bias=_bool(l.opts.get("bias", "yes"), "bias", where))
    return Shape(l.p["n"], flat=True)


def _r_flatten(l, shape, where, pools, i, m):
    return Shape(shape.size, flat=True)


def _r_same(l, shape, where, pools, i, m):
    if l.args:
        raise CnnError(f"{where}: {l.word} takes no argument")
    return shape


def _r_leakyrelu(l, shape, where, pools, i, m):
    v = l.args[0] if l.args else l.opts.get("alpha", l.opts.get("slope", "0.01"))
    l.p = dict(alpha=_num(v, "leakyrelu slope", where))
    return shape


def _r_dropout(l, shape, where, pools, i, m):
    v = l.args[0] if l.args else l.opts.get("p", l.opts.get("rate"))
    if v is None:
        raise CnnError(f"{where}: dropout takes P")
    l.p = dict(p=_num(v, "dropout rate", where))
    return shape


def _r_batchnorm(l, shape, where, pools, i, m):
    l.p = dict(momentum=_num(l.opts.get("momentum", "0.1"), "momentum", where),
               eps=_num(l.opts.get("eps", "1e-5"), "eps", where),
               c=shape.size if shape.flat else shape.c, flat=shape.flat)
    return shape


_RESOLVE = {
    "conv": _r_conv, "deconv": _r_conv, "pool": _r_pool, "avgpool": _r_pool,
    "globalavgpool": _r_globalavgpool, "unpool": _r_unpool, "fc": _r_fc,
    "flatten": _r_flatten, "relu": _r_same, "sigmoid": _r_same, "tanh": _r_same,
    "softmax": _r_same, "leakyrelu": _r_leakyrelu, "dropout": _r_dropout,
    "batchnorm": _r_batchnorm,
}


# ---------------------------------------------------------------- counts (for summary / self-check)

def layer_params(l):
    """(trainable, non-trainable) parameter counts."""
    p = l.p
    if l.kind in ("conv", "deconv"):
        return p["k"][0] * p["k"][1] * p["cin"] * p["n"] + (p["n"] if p["bias"] else 0), 0
    if l.kind == "fc":
        return p["cin"] * p["n"] + (p["n"] if p["bias"] else 0), 0
    if l.kind == "batchnorm":
        return 2 * p["c"], 2 * p["c"]
    return 0, 0


def layer_macs(l):
    """conv: Hout*Wout*Cout*Kh*Kw*Cin; deconv: Hin*Win*Cin*Cout*Kh*Kw; fc: in*out."""
    p = l.p
    if l.kind == "conv":
        return l.out.h * l.out.w * l.out.c * p["k"][0] * p["k"][1] * p["cin"]
    if l.kind == "deconv":
        i = l.inp.as_spatial()
        return i.h * i.w * p["cin"] * p["n"] * p["k"][0] * p["k"][1]
    if l.kind == "fc":
        return p["cin"] * p["n"]
    return 0


def summary(m):
    rows = [f"model {m.name}  input {m.input}  loss {m.loss}  outputs {m.outputs}"]
    tp = np_ = macs = 0
    for l in m.layers:
        t, n = layer_params(l)
        tp, np_, macs = tp + t, np_ + n, macs + layer_macs(l)
        note = " (folded into loss)" if l.folded else ""
        rows.append(f"  {l.line:3d} {l.word:14s} {l.name:8s} {str(l.out):>12s}  params {t:8d}"
                    f"  macs {layer_macs(l):10d}{note}")
    rows.append(f"  params {tp} trainable + {np_} non-trainable, MACs {macs}")
    return "\n".join(rows)


# ---------------------------------------------------------------- the torch module

def unpool(x, indices, pool, size):
    """Max-unpooling, nn.MaxUnpool2d with the pool's kernel, stride and padding
    and output_size = the pool's input size (H, W): each value is written at
    its argmax (a flat index into the pool's unpadded input plane), the rest
    is zero.  Where overlapping windows share an argmax, the window that comes
    last in row-major order wins (PyTorch's CPU loop), yet the backward still
    gathers the gradient at the argmax for every window (torch's
    max_unpool2d backward).  Without overlap this is exactly max-pool's
    backward applied to x.
    x, indices: [B,C,h,w]; pool: the pool Layer; size: (H, W)."""
    return F.max_unpool2d(x, indices, pool.p["k"], pool.p["stride"], pool.p["pad"], output_size=size)


def unpool_overlaps(model):
    """True when some unpool's pool has windows that overlap (stride < kernel),
    where unpool is not the derivative-consistent scatter (see unpool)."""
    for l in model.layers:
        if l.kind == "unpool":
            p = model.layers[l.pair].p
            if p["stride"][0] < p["k"][0] or p["stride"][1] < p["k"][1]:
                return True
    return False


class CnnNet(nn.Module):
    """The model as torch modules.  Parameter layers are attributes named as
    the SPEC's state_dict (conv1, deconv1, fc1, bn1); the rest run in forward.
    forward takes NHWC [B,H,W,C] (or [B,H,W] when C=1) and returns [B, outputs]:
    an image output is flattened in H,W,C order, the layout of the input and of
    the C executable's output (MSE/BCE targets use the same order)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.layers = [l for l in model.layers if not l.folded]
        for l in self.layers:
            mod = self._make(l)
            if mod is not None:
                self.add_module(l.name, mod)

    @staticmethod
    def _make(l):
        p = l.p
        if l.kind == "conv":
            return nn.Conv2d(p["cin"], p["n"], p["k"], stride=p["stride"], padding=p["pad"],
                             dilation=p["dilation"], bias=p["bias"])
        if l.kind == "deconv":
            return nn.ConvTranspose2d(p["cin"], p["n"], p["k"], stride=p["stride"], padding=p["pad"],
                                      output_padding=p["outpad"], dilation=p["dilation"],
                                      bias=p["bias"])
        if l.kind == "fc":
            return nn.Linear(p["cin"], p["n"], bias=p["bias"])
        if l.kind == "batchnorm":
            cls = nn.BatchNorm1d if p["flat"] else nn.BatchNorm2d
            return cls(p["c"], eps=p["eps"], momentum=p["momentum"])
        return None

    def forward(self, x):
        if x.dim() == 3:
            x = x.unsqueeze(-1)
        x = x.permute(0, 3, 1, 2)            # NHWC -> NCHW
        pooled = {}                           # pool layer index -> argmax indices
        index = {id(l): i for i, l in enumerate(self.model.layers)}
        for l in self.layers:
            x = self._step(l, x, pooled, index[id(l)])
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)        # NCHW -> NHWC, like the input
        return torch.flatten(x, 1)

    def _step(self, l, x, pooled, i):
        k, p = l.kind, l.p
        if k in ("conv", "deconv", "pool", "avgpool", "globalavgpool", "unpool") and x.dim() == 2:
            x = x.reshape(x.shape[0], -1, 1, 1)
        if k == "conv":
            m = getattr(self, l.name)
            w = m.weight.flip(-1, -2) if p["flip"] else m.weight   # true convolution
            return F.conv2d(x, w, m.bias, m.stride, m.padding, m.dilation)
        if k in ("deconv", "batchnorm"):
            return getattr(self, l.name)(x)
        if k == "fc":
            return getattr(self, l.name)(torch.flatten(x, 1))
        if k == "pool":
            y, idx = F.max_pool2d(x, p["k"], p["stride"], p["pad"], return_indices=True)
            pooled[i] = idx
            return y
        if k == "unpool":
            pool = self.model.layers[l.pair]
            size = pool.inp.as_spatial()
            return unpool(x, pooled.pop(l.pair), pool, (size.h, size.w))
        if k == "avgpool":
            return F.avg_pool2d(x, p["k"], p["stride"], p["pad"], count_include_pad=p["count_pad"])
        if k == "globalavgpool":
            return x.mean(dim=(2, 3), keepdim=True)
        if k == "flatten":
            return torch.flatten(x, 1)
        if k == "relu":
            return F.relu(x)
        if k == "sigmoid":
            return torch.sigmoid(x)
        if k == "tanh":
            return torch.tanh(x)
        if k == "leakyrelu":
            return F.leaky_relu(x, p["alpha"])
        if k == "softmax":
            return F.softmax(x, dim=1)        # over channels (4-D) or features (flat)
        if k == "dropout":
            return F.dropout(x, p["p"], self.training)
        raise CnnError(f"layer kind {k} not implemented")


# ---------------------------------------------------------------- weights, loss, optimizer

def tensor_dict(net):
    """Every weights-file tensor, in layer order: parameters and bn running
    stats; num_batches_tracked is not part of the contract."""
    return {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


def trainable_names(net):
    return [n for n, _ in net.named_parameters()]


def load_weights(net, arrays):
    """Copy arrays (a dict or NpzFile) into net; every tensor must be present
    with its exact shape; extra arrays (optimizer state) are ignored."""
    own = tensor_dict(net)
    missing = [k for k in own if k not in arrays]
    if missing:
        raise CnnError(f"weights file lacks {', '.join(missing)}")
    with torch.no_grad():
        for k, t in own.items():
            a = torch.as_tensor(arrays[k])
            if tuple(a.shape) != tuple(t.shape):
                raise CnnError(f"weights {k}: shape {tuple(a.shape)}, model needs {tuple(t.shape)}")
            t.copy_(a.to(t.dtype))


def loss_fn(model):
    if model.loss == "crossentropy":
        return lambda out, y: F.cross_entropy(out, y)
    if model.loss == "mse":
        return lambda out, y: F.mse_loss(out, y)
    return lambda out, y: F.binary_cross_entropy(out, y)


def optimizer_settings(model, kind=None, **flags):
    """The optimizer's hyper-parameters: each field from the flag if given, else
    the model file's optimizer line, else the defaults of the resulting kind."""
    file = dict(model.optimizer)
    kind = kind or file.get("kind", "adam")
    s = dict(OPTIMIZER_DEFAULTS[kind])
    for k in s:
        if flags.get(k) is not None:
            s[k] = flags[k]
        elif k in file:
            s[k] = file[k]
    s["kind"] = kind
    return s


def make_optimizer(params, s):
    if s["kind"] == "adam":
        return torch.optim.Adam(params, lr=s["lr"], betas=(s["beta1"], s["beta2"]), eps=s["eps"])
    return torch.optim.SGD(params, lr=s["lr"], momentum=s["momentum"])


def has_dropout(model):
    return any(l.kind == "dropout" and l.p["p"] > 0 for l in model.layers)
