#!/usr/bin/python3
"""bench.py -- cnnc against PyTorch on this machine, in the same run.

For each benchmark model (M1 assignment, M2 kaggle-digits, M3 lenet5, M4
vgg-small) it measures, for cnnc's generated executable and for the same
model in PyTorch (tests/ref/cnnmodel.py builds it from the .cnn file):
  - training images/s: batch 64, Adam, 1 and 2 threads
  - inference images/s at batch 64 and single-image latency (1 thread)
  - peak RSS of the training process (1 thread)
  - `cnnc build` time
Each process reports the median of 5 timed repetitions of at least 0.2 s
after a warm-up, on synthetic data (no file loading is timed); cnnc's and
PyTorch's processes take turns, ROUNDS times per model, and each figure is
the median over its rounds, so that both sides see the machine's slow and
fast spells alike (a shared machine's speed drifts by 20% over minutes).  It prints a table of
the ratios cnnc/PyTorch and the fraction of this core's FMA peak (measured by
bench/peak.c) that cnnc's training reaches, then each conv layer's forward and
backward share of that peak (`EXE bench --layers`), and writes build/bench.csv
and build/bench-layers.csv.
Usage: bench.py [--models M1,M3] [--out build/bench.csv]
"""

import argparse
import csv
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(ROOT, "build")
# (tag, example, cnnc build flags): M4W4 is M4 built with --winograd 4 (F(4x4,3x3): faster, with
# about 6x the float32 rounding of the default F(2x2,3x3); tests/ref/winograd_error.py)
MODELS = [("M1", "assignment", []), ("M2", "kaggle-digits", []), ("M3", "lenet5", []), ("M4", "vgg-small", []),
          ("M4W4", "vgg-small", ["--winograd", "4"])]
BATCH = 64
REPS = 5
MIN_SECONDS = 0.2
ROUNDS = 3


def child_rss(cmd, env=None):
    """stdout and peak RSS (MiB) of one child process, via wait4."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = p.stdout.read().decode()
    err = p.stderr.read().decode()
    _, status, usage = os.wait4(p.pid, 0)
    if status:
        sys.exit(f"bench: {' '.join(cmd)} failed:\n{err}")
    return out, usage.ru_maxrss / 1024.0


def summary_figures(cnnc, model):
    """(MACs per image, {layer name: output channels}) from one `cnnc summary`: the totals line, and the
    table's output column (HxWxC or N)."""
    out = subprocess.run([cnnc, "summary", model], capture_output=True, text=True, check=True).stdout
    macs = int(re.search(r"Forward pass per image: ([\d,]+) MACs", out).group(1).replace(",", ""))
    chans = {}
    for line in out.splitlines():
        m = re.match(r"\s*\d+\s+(\S+)\s+\S+\s+(?:\d+×\d+×)?(\d+)\s", line)
        if m:
            chans[m.group(1)] = int(m.group(2))
    return macs, chans


def cnnc_build(cnnc, model, name, flags):
    """The benchmark executable's path and `cnnc build`'s seconds."""
    exe = os.path.join(BUILD, "bench", name)
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    t0 = time.perf_counter()
    subprocess.run([cnnc, "build", model, "-o", exe] + flags, check=True)
    return exe, time.perf_counter() - t0


def cnnc_figures(exe):
    fig = {}
    for threads in (1, 2):
        out, rss = child_rss([exe, "bench", "--batch", str(BATCH), "--optimizer", "adam", "--threads",
                              str(threads), "--csv-out"])
        train, infer, latency = map(float, out.strip().splitlines()[-1].split(","))
        fig[f"train_{threads}t"] = train
        if threads == 1:
            fig.update(infer=infer, latency_ms=latency, rss_mib=rss)
    out, _ = child_rss([exe, "bench", "--layers", "--batch", str(BATCH), "--optimizer", "adam", "--threads", "1",
                        "--csv-out"])
    fig["layers"] = list(csv.DictReader(out.strip().splitlines()))
    return fig


def median_figures(rounds):
    """One dict of figures from ROUNDS of them: each number the median over the rounds; each conv
    layer's times and rates too (a layer's rate is then the median of its rates, not recomputed)."""
    fig = {k: statistics.median(r[k] for r in rounds) for k in rounds[0] if k != "layers"}
    if "layers" in rounds[0]:
        fig["layers"] = [dict(l, **{k: statistics.median(float(r["layers"][i][k]) for r in rounds)
                                    for k in ("forward_ms", "backward_ms", "forward_gflops", "backward_gflops")},
                              **{k + "_best": max(float(r["layers"][i][k]) for r in rounds)
                                 for k in ("forward_gflops", "backward_gflops")})
                         if l["kind"] == "conv" else l for i, l in enumerate(rounds[0]["layers"])]
    return fig


def interleaved_figures(exe, model):
    """cnnc's and PyTorch's figures, their processes taking turns for ROUNDS rounds."""
    cnnc_rounds, torch_rounds = [], []
    for _ in range(ROUNDS):
        cnnc_rounds.append(cnnc_figures(exe))
        torch_rounds.append(torch_figures(model))
    return median_figures(cnnc_rounds), median_figures(torch_rounds)


def winograd_layers(cnnc, model, flags):
    """{layer name: m} for the layers that run Winograd F(mxm,3x3), from the emitted C."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([cnnc, "emit", model, "-o", d] + flags, capture_output=True, text=True, check=True)
        text = "".join(open(os.path.join(d, f)).read() for f in os.listdir(d) if f.endswith(".c"))
    return {name.lower(): int(m) for name, m in re.findall(r"^\s*(\w+)_WINO = \d+, +/\* Winograd F\((\d)", text, re.M)}


TORCH_SCRIPT = r"""
import sys, time, statistics, torch
sys.path.insert(0, sys.argv[1])
import cnnmodel
model = cnnmodel.parse_file(sys.argv[2]); threads = int(sys.argv[3]); batch = int(sys.argv[4])
reps, min_s = int(sys.argv[5]), float(sys.argv[6])
torch.set_num_threads(threads)
torch.manual_seed(1)
net = cnnmodel.CnnNet(model)
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
lossf = cnnmodel.loss_fn(model)
i = model.input
x = torch.rand(batch, i.h, i.w, i.c)
y = torch.randint(0, max(model.outputs, 2), (batch,)) if model.loss == "crossentropy" else torch.rand(batch, model.outputs)
def step():
    opt.zero_grad(); l = lossf(net(x), y); l.backward(); opt.step()
def rate(fn):
    for _ in range(3): fn()
    rs = []
    for _ in range(reps):
        n, t0 = 0, time.perf_counter()
        while True:
            fn(); n += 1
            t = time.perf_counter() - t0
            if t >= min_s: break
        rs.append(n / t)
    return statistics.median(rs)
net.train()
train = rate(step) * batch
net.eval()
with torch.no_grad():
    infer = rate(lambda: net(x)) * batch
    x1 = x[:1]
    latency = 1000.0 / rate(lambda: net(x1))
print(f"{train},{infer},{latency}")
"""


def torch_figures(model):
    fig = {}
    for threads in (1, 2):
        out, rss = child_rss(["/usr/bin/python3", "-c", TORCH_SCRIPT, os.path.join(ROOT, "tests", "ref"), model,
                              str(threads), str(BATCH), str(REPS), str(MIN_SECONDS)])
        train, infer, latency = map(float, out.strip().splitlines()[-1].split(","))
        fig[f"train_{threads}t"] = train
        if threads == 1:
            fig.update(infer=infer, latency_ms=latency, rss_mib=rss)
    return fig


def blas_alternative():
    p = subprocess.run(["update-alternatives", "--query", "libblas.so.3-x86_64-linux-gnu"], capture_output=True,
                       text=True)
    m = re.search(r"^Value: (.*)$", p.stdout, re.M)
    return m.group(1) if m else "unknown"


def c_tool_reading(name, cflags):
    """The first number bench/<name>.c prints, compiled with cflags on first use."""
    exe = os.path.join(BUILD, "bench", name)
    if exe not in c_tool_reading.built:
        os.makedirs(os.path.dirname(exe), exist_ok=True)
        subprocess.run(["gcc"] + cflags + ["-o", exe, os.path.join(HERE, name + ".c")], check=True)
        c_tool_reading.built.add(exe)
    return float(subprocess.run([exe], capture_output=True, text=True, check=True).stdout.split()[0])


c_tool_reading.built = set()


def fma_peak():
    """This core's FMA peak now, GFLOP/s (bench/peak.c)."""
    return c_tool_reading("peak", ["-O3", "-march=native", "-ffp-contract=fast"])


def core_roundtrip_ns():
    """A cache line's round trip between CPUs 0 and 1 now (bench/roundtrip.c), in ns."""
    return c_tool_reading("roundtrip", ["-std=c11", "-O2", "-pthread"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(tag for tag, _, _ in MODELS))
    ap.add_argument("--out", default=os.path.join(BUILD, "bench.csv"))
    a = ap.parse_args()
    cnnc = os.path.join(BUILD, "cnnc")
    # the peak is measured before each model too and the largest reading kept: a busy moment reads low,
    # and dividing by it would overstate the kernels' shares
    peaks = [fma_peak()]
    print(f"libblas.so.3 -> {blas_alternative()}")
    print(f"batch {BATCH}, Adam; each figure the median of {ROUNDS} rounds (cnnc's and PyTorch's processes taking "
          f"turns) of medians of {REPS} repetitions; ratios are cnnc / PyTorch\n")
    rows, layer_rows = [], []
    wanted = set(a.models.split(","))
    for tag, name, flags in MODELS:
        if tag not in wanted:
            continue
        model = os.path.join(ROOT, "examples", name + ".cnn")
        peaks.append(fma_peak())
        trip = core_roundtrip_ns()   # just before cnnc's figures: the 2-thread ones depend on it
        exe, build_s = cnnc_build(cnnc, model, name + "".join(flags), flags)
        c, t = interleaved_figures(exe, model)
        c["build_s"] = build_s
        macs, chans = summary_figures(cnnc, model)
        # a training step is forward + backward-data + backward-weights: about 3 forward passes
        train_gflops = max(c["train_1t"], 0) * 3 * 2 * macs / 1e9
        rows.append(dict(
            model=tag, name=" ".join([name] + flags), macs=macs,
            cnnc_train_1t=c["train_1t"], cnnc_train_2t=c["train_2t"],
            torch_train_1t=t["train_1t"], torch_train_2t=t["train_2t"],
            train_ratio=max(c["train_1t"], c["train_2t"]) / max(t["train_1t"], t["train_2t"]),
            cnnc_infer=c["infer"], torch_infer=t["infer"], infer_ratio=c["infer"] / t["infer"],
            cnnc_latency_ms=c["latency_ms"], torch_latency_ms=t["latency_ms"],
            latency_ratio=t["latency_ms"] / c["latency_ms"],
            cnnc_rss_mib=c["rss_mib"], torch_rss_mib=t["rss_mib"], rss_ratio=c["rss_mib"] / t["rss_mib"],
            build_s=c["build_s"], train_gflops_1t=train_gflops, core_roundtrip_ns=trip))
        wino = winograd_layers(cnnc, model, flags)
        for l in c["layers"]:
            if l["kind"] != "conv":
                continue
            layer_rows.append(dict(model=tag, layer=l["layer"], out_channels=chans.get(l["layer"], 0),
                                   winograd=wino.get(l["layer"], 0),
                                   forward_ms=float(l["forward_ms"]), backward_ms=float(l["backward_ms"]),
                                   forward_gflops=float(l["forward_gflops"]),
                                   backward_gflops=float(l["backward_gflops"]),
                                   forward_gflops_best=float(l["forward_gflops_best"]),
                                   backward_gflops_best=float(l["backward_gflops_best"])))
    peak = max(peaks)
    print(f"FMA peak (bench/peak.c): {peak:.1f} GFLOP/s per core, the largest of {len(peaks)} readings "
          f"({min(peaks):.1f} the smallest)\n")
    for r in rows:
        r["peak_fraction_1t"] = r["train_gflops_1t"] / peak
        r["fma_peak_gflops"] = peak
    for r in layer_rows:
        r["forward_peak"], r["backward_peak"] = r["forward_gflops"] / peak, r["backward_gflops"] / peak
        r["forward_peak_best"], r["backward_peak_best"] = (r["forward_gflops_best"] / peak,
                                                           r["backward_gflops_best"] / peak)
    head = ("model", "train img/s cnnc 1t/2t", "torch 1t/2t", "train x", "infer x", "latency x",
            "RSS cnnc/torch MiB", "build s", "of peak", "core trip")
    table = [head]
    for r in rows:
        table.append((f"{r['model']} {r['name']}",
                      f"{r['cnnc_train_1t']:,.0f} / {r['cnnc_train_2t']:,.0f}",
                      f"{r['torch_train_1t']:,.0f} / {r['torch_train_2t']:,.0f}",
                      f"{r['train_ratio']:.2f}", f"{r['infer_ratio']:.2f}", f"{r['latency_ratio']:.2f}",
                      f"{r['cnnc_rss_mib']:.0f} / {r['torch_rss_mib']:.0f}", f"{r['build_s']:.2f}",
                      f"{100 * r['peak_fraction_1t']:.0f}%", f"{r['core_roundtrip_ns']:.0f} ns"))
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    print("\ntrain x: best of 1/2 threads, cnnc over PyTorch; infer x: batch-64 inference at 1 thread;"
          "\nlatency x: PyTorch's single-image latency over cnnc's; of peak: cnnc's 1-thread training"
          " FLOPs (3 x 2 x MACs per image) over the measured FMA peak;"
          "\ncore trip: a cache line's round trip between CPUs 0 and 1 just before cnnc's runs (bench/roundtrip.c):"
          "\nhundreds of ns where the host has put them on different core complexes, and 2 threads then gain less.")
    print("\nconv layers, 1 thread, batch 64 training (bench --layers): share of the FMA peak"
          "\n(target: >= 70% forward and backward where a layer has >= 16 output channels;"
          "\n W2, W4: forward, dL/din and dL/dweight by Winograd F(2x2,3x3), F(4x4,3x3): 2.25x, 4x fewer"
          "\n multiplications, so its share counts the direct convolution's FLOPs: an effective rate, which can"
          "\n pass 100%; the shares are medians over the rounds, which the target is judged on; best round: the"
          "\n largest of them, to show the host's spread)")
    for r in layer_rows:
        mark = "" if r["out_channels"] < 16 else (
            "  ok" if min(r["forward_peak"], r["backward_peak"]) >= 0.7 else "  below 70%")
        wino = f" W{r['winograd']}" if r["winograd"] else "   "
        print(f"  {r['model']} {r['layer']:<8}{wino} {r['out_channels']:>4} ch  forward {r['forward_ms']:7.2f} ms "
              f"{100 * r['forward_peak']:3.0f}%   backward {r['backward_ms']:7.2f} ms {100 * r['backward_peak']:3.0f}%"
              f"   best round {100 * r['forward_peak_best']:3.0f}% / {100 * r['backward_peak_best']:3.0f}%{mark}")
    for path, data in ((a.out, rows), (os.path.splitext(a.out)[0] + "-layers.csv", layer_rows)):
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(data[0].keys()) if data else ["model"])
            w.writeheader()
            w.writerows(data)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
