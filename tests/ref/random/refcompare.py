"""refcompare.py -- test_ref.c's error measure in Python, and the conditioning screen.

compare(ref, got, init) applies tests/ref/test_ref.c's rule (keep the two in
step): per element |ref - got| / max(|ref|, 1e-2 max|ref|, 1e-6) <= 1e-4 for
output, loss, losses and grad.*; after.* compared as updates from the initial
weights, less 4 float32 ulps of the weight, within 1e-3, leaving out the
elements whose first gradient is below 1% of the tensor's largest.  It returns
the worst ratio err/tolerance per array (<= 1 passes).  test_ref.c judges
small after.* updates on a larger floor (FLOOR_UPDATE, a tenth of the largest
update: a small update is the residual of cancelling steps); this screen keeps
the 1e-2 floor, so a batch it accepts leaves float32 PyTorch a margin that
another float32 program's rounding (cnnc's Winograd) can use.

The conditioning screen: the same trace in float32 PyTorch, judged against
the float64 trace by that measure.  When PyTorch's own float32 arithmetic does
not stay well inside the tolerance, the model is ill-conditioned for float32
(e.g. a batchnorm over 4 nearly equal values, a maximum decided by rounding)
and no float32 implementation can be expected to match: the generator
replaces such a model, and shrink.py tells them apart from real mismatches.
"""

import numpy as np

RTOL, RTOL_UPDATE, FLOOR, ATOL, ADAM_NOISE = 1e-4, 1e-3, 1e-2, 1e-6, 1e-2
FLT_EPSILON = float(np.finfo(np.float32).eps)


def compare_array(r, g, grad=None, init=None):
    """worst err/tol for one array (inf when missing or non-finite)."""
    if g is None or np.size(g) != np.size(r):
        return float("inf"), 0
    a = np.asarray(r, dtype=np.float32).astype(np.float64).ravel()
    b = np.asarray(g, dtype=np.float32).astype(np.float64).ravel()
    w = None
    if init is not None and np.size(init) == a.size:
        w = np.asarray(init, dtype=np.float32).astype(np.float64).ravel()
        # test_ref subtracts in float32
        a = (a.astype(np.float32) - w.astype(np.float32)).astype(np.float64)
        b = (b.astype(np.float32) - w.astype(np.float32)).astype(np.float64)
    amax = float(np.max(np.abs(a))) if a.size else 0.0
    scale = max(FLOOR * amax, ATOL)
    keep = np.ones(a.size, bool)
    if grad is not None:
        gr = np.abs(np.asarray(grad, dtype=np.float32).astype(np.float64).ravel())
        gmax = float(np.max(gr)) if gr.size else 0.0
        if gr.size == a.size:
            keep = ~(gr < ADAM_NOISE * gmax)
    stored = 4 * FLT_EPSILON * np.abs(w) if w is not None else 0.0
    err = np.maximum(np.abs(a - b) - stored, 0) / np.maximum(np.abs(a), scale)
    err = np.where(np.isnan(err), np.inf, err)[keep]
    worst = float(np.max(err)) if err.size else 0.0
    tol = RTOL_UPDATE if w is not None else RTOL
    return worst / tol, int(a.size - np.count_nonzero(keep))


def compare(ref, got, init):
    """{array name: worst err/tol} over every array of ref (dicts of numpy arrays)."""
    out = {}
    for name, r in ref.items():
        grad = w0 = None
        if name.startswith("after."):
            grad = ref.get("grad." + name[6:])
            w0 = init.get(name[6:])
        out[name] = compare_array(r, got.get(name), grad, w0)[0]
    return out


def noise_gradients(model, weights, batch, steps=3, rel=1e-8):
    """Gradients that are zero in exact arithmetic but not in floating point
    (a bias whose shift a later batchnorm or softmax removes, a weight fed a
    feature that is constant over the batch before a batchnorm, a unit whose
    pre-activations are all on one side of a ReLU...): in float64 they are
    ~1e-17 of the tensor's largest, in float32 ~1e-7, in both of random sign.
    Adam divides by sqrt(v), turning any of them into a full +-lr step of
    random direction, which changes every later step; with any optimizer a
    whole tensor of them is compared as noise (a tensor whose gradient is 0
    everywhere -- a symmetry, two equal logits -- may even come out exactly 0
    in float64 and ~1e-10 in float32).  Returns a description of the first
    such gradient (float64 training, every step; also dL/dx), or None."""
    import torch
    import cnnmodel
    opt = cnnmodel.optimizer_settings(model, None)
    lossf = cnnmodel.loss_fn(model)
    net = cnnmodel.CnnNet(model).to(torch.float64)
    cnnmodel.load_weights(net, weights)
    net.train()
    x = torch.as_tensor(np.asarray(batch["x"])).to(torch.float64)
    y = torch.as_tensor(np.asarray(batch["y"]))
    y = y.long() if model.loss == "crossentropy" else y.to(torch.float64)
    gx = np.abs(input_grad(model, weights, batch, True))
    if gx.max() < 1e-9:
        return f"grad.input is zero (largest {gx.max():.2g})"
    if not list(net.parameters()):
        return None     # no parameters: dL/dx (checked above) is all there is to compare
    optim = cnnmodel.make_optimizer(net.parameters(), opt)
    for step in range(steps):
        optim.zero_grad()
        lossf(net(x), y).backward()
        for n, p in net.named_parameters():
            g = p.grad.detach().abs()
            gmax = float(g.max()) if g.numel() else 0.0
            if gmax < 1e-9:
                # Zero in exact arithmetic: either exactly (dead ReLUs; nothing to test) or
                # by a cancellation that float64 PyTorch may happen to get exact while float32
                # leaves ~1e-10 -- and test_ref judges an all-zero tensor against 1e-6 * 1e-4.
                return f"step {step + 1}: grad.{n} is zero (largest {gmax:.2g})"
            if opt["kind"] == "adam":
                small = (g > 0) & (g < rel * gmax)
                if bool(small.any()):
                    i = int(torch.nonzero(small.flatten())[0])
                    return (f"step {step + 1}: grad.{n}[{i}] = {float(p.grad.flatten()[i]):.2g} is rounding noise "
                            f"(largest {gmax:.2g}), and Adam would step it by +-lr")
        optim.step()
    return None


def input_grad(model, weights, batch, double=True):
    """dLoss/dx of the loaded weights, [B,H,W,C] like x: the executable's trace
    writes it as grad.input (runtime/trace.c), reference.py does not."""
    import torch
    import cnnmodel
    dtype = torch.float64 if double else torch.float32
    net = cnnmodel.CnnNet(model).to(dtype)
    cnnmodel.load_weights(net, weights)
    net.train()
    x = torch.as_tensor(np.asarray(batch["x"])).to(dtype).requires_grad_(True)
    y = torch.as_tensor(np.asarray(batch["y"]))
    y = y.long() if model.loss == "crossentropy" else y.to(dtype)
    cnnmodel.loss_fn(model)(net(x), y).backward()
    g = x.grad.detach().cpu().numpy()
    return g if double else g.astype(np.float32)


def ulp_nudged(arrays, rng):
    """A copy of ARRAYS (name -> array) whose float values are each moved by
    -1, 0 or +1 float32 ulp at random; other arrays (class labels) as they are."""
    out = {}
    for k, v in arrays.items():
        a = np.asarray(v)
        if a.dtype.kind != "f":
            out[k] = v
            continue
        a32 = a.astype(np.float32)
        step = rng.integers(-1, 2, a32.shape)
        up, down = np.nextafter(a32, np.float32(np.inf)), np.nextafter(a32, np.float32(-np.inf))
        out[k] = np.where(step > 0, up, np.where(step < 0, down, a32)).astype(a.dtype)
    return out


def conditioning(model, weights, batch, steps=3, samples=1):
    """(worst ratio, array) of float32 PyTorch against float64 PyTorch, and the two traces.

    With SAMPLES > 1, also samples - 1 float32 traces from the weights and the batch
    nudged by an ulp at random (ulp_nudged), all judged against the one float64 trace
    of the given arrays, and the worst of them counts.  One float32 trace is one draw
    of rounding: another float32 program (cnnc's sums run in another order) is another
    draw, and where rounding is amplified -- seed 9000's #94, a batchnorm over 5 values
    of a channel whose spread is a tenth of the fc's output scale -- PyTorch's own draw
    came out at 0.18 of the tolerance, cnnc's at 1.31, and nudged ones at 0.30-0.78:
    errors that size belong to the model, not to either program."""
    import cnnmodel
    import reference
    opt = cnnmodel.optimizer_settings(model, None)
    ref64, _ = reference.trace(model, weights, batch, steps, opt, double=True)
    ref64["grad.input"] = input_grad(model, weights, batch, True)
    draws, ref32 = [], None    # draws: (worst ratio, array) per float32 trace
    for sample in range(samples):
        rng = np.random.default_rng(sample)
        w, b = (weights, batch) if sample == 0 else (ulp_nudged(weights, rng), ulp_nudged(batch, rng))
        got, _ = reference.trace(model, w, b, steps, opt, double=False)
        got["grad.input"] = input_grad(model, w, b, False)
        res = compare(ref64, got, weights)
        name = max(res, key=res.get) if res else ""
        draws.append((res.get(name, 0.0), name))
        if sample == 0:
            ref32 = got        # PyTorch's own float32 trace, the one returned
    return max(draws, key=lambda d: d[0]), ref64, ref32
