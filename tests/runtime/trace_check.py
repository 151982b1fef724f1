#!/usr/bin/python3
"""trace_check.py — the fake model in PyTorch, as referee for `trace`.

usage: trace_check.py W.npz B.npz T.npz OPTIMIZER LR STEPS LOSS
The fake model (fake_model.c) is nn.Linear(4, 3) on the flattened 2x2x1
input plus a running mean of its outputs (momentum 0.1) updated on every
training forward.  Runs STEPS iterations of zero_grad/forward/loss/backward/
step from W.npz on batch B.npz and compares every array of T.npz."""
import sys
import numpy as np
import torch

wf, bf, tf, opt, lr, steps, loss_kind = sys.argv[1:8]
lr, steps = float(lr), int(steps)
W, B, T = np.load(wf), np.load(bf), np.load(tf)
torch.manual_seed(0)
fc = torch.nn.Linear(4, 3)
with torch.no_grad():
    fc.weight.copy_(torch.from_numpy(W["fc1.weight"]))
    fc.bias.copy_(torch.from_numpy(W["fc1.bias"]))
running = torch.from_numpy(W["bn1.running_mean"]).clone()
x = torch.from_numpy(B["x"]).reshape(B["x"].shape[0], -1)   # NHWC with C=1: same order as NCHW
y = torch.from_numpy(B["y"])
if loss_kind == "mse":
    crit = torch.nn.MSELoss()
    if y.dtype != torch.float32:
        y = torch.nn.functional.one_hot(y.long(), 3).float()
else:
    crit = torch.nn.CrossEntropyLoss()
    y = y.long()
params = [fc.weight, fc.bias]
if opt == "sgd":
    o = torch.optim.SGD(params, lr=lr)
elif opt == "momentum":
    o = torch.optim.SGD(params, lr=lr, momentum=0.9)
else:
    o = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)

def forward():
    global running
    out = fc(x)
    running = 0.9 * running + 0.1 * out.detach().mean(0)
    return out

def close(name, got, want, tol=2e-5):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{name}: shape {got.shape} vs {want.shape}"
    if got.size == 0:
        return
    diff = np.abs(got - want).max()
    assert diff <= tol * max(1.0, np.abs(want).max()), f"{name} maxdiff={diff}"

losses = []
for s in range(max(steps, 1)):
    o.zero_grad()
    out = forward()
    loss = crit(out, y)
    loss.backward()
    losses.append(loss.item())
    if s == 0:
        close("output", T["output"], out.detach().numpy())
        close("loss", T["loss"], [loss.item()])
        close("grad.fc1.weight", T["grad.fc1.weight"], fc.weight.grad.numpy())
        close("grad.fc1.bias", T["grad.fc1.bias"], fc.bias.grad.numpy())
    if steps > 0:
        o.step()
close("losses", T["losses"], losses[:steps])
close("after.fc1.weight", T["after.fc1.weight"], fc.weight.detach().numpy())
close("after.fc1.bias", T["after.fc1.bias"], fc.bias.detach().numpy())
close("after.bn1.running_mean", T["after.bn1.running_mean"], running.numpy())
assert T["after.fc1.weight"].dtype == np.float32 and T["output"].shape == (x.shape[0], 3)
print("torch agrees")
