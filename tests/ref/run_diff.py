#!/usr/bin/python3
"""run_diff.py -- the differential test: cnnc's generated executable against PyTorch.

For each model (default: every tests/ref/models/*.cnn):
  1. cnnc build MODEL -o DIR/NAME
  2. reference.py init (--randomize-bn) and batch -> DIR/NAME.w.npz, DIR/NAME.b.npz
  3. reference.py trace -> DIR/NAME.ref.npz          (PyTorch)
  4. DIR/NAME trace ...  -> DIR/NAME.got.npz          (the C side, same arguments)
  5. reference.py compare DIR/NAME.ref.npz DIR/NAME.got.npz

The executable's trace command line is a template (--exe-args), by default
  trace --init {w} --batch {b} --steps {steps} --out {out}
Exit status: 0 all passed, 1 some failed, 77 cnnc not built (skip).
"""

import argparse
import glob
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
REF = [sys.executable, os.path.join(HERE, "reference.py")]
DEFAULT_EXE_ARGS = "trace --init {w} --batch {b} --steps {steps} --out {out}"


def run(cmd, log):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log.append(f"$ {' '.join(cmd)}\n{p.stdout}")
    return p.returncode


def one(model, a, d):
    name = os.path.splitext(os.path.basename(model))[0]
    exe = os.path.join(d, name)
    w, b = os.path.join(d, name + ".w.npz"), os.path.join(d, name + ".b.npz")
    ref, got = os.path.join(d, name + ".ref.npz"), os.path.join(d, name + ".got.npz")
    log = []
    steps = [
        [a.cnnc, "build", model, "-o", exe],
        REF + ["init", model, "--seed", str(a.seed), "--out", w, "--randomize-bn"],
        REF + ["batch", model, "--seed", str(a.seed + 1), "--out", b],
        REF + ["trace", model, "--init", w, "--batch", b, "--steps", str(a.steps), "--out", ref, "--quiet"]
        + (["--double"] if a.double else []),
        [exe] + a.exe_args.format(w=w, b=b, steps=a.steps, out=got).split(),
        REF + ["compare", ref, got, "--rtol", str(a.rtol)] + (["--quiet"] if not a.verbose else []),
    ]
    for cmd in steps:
        if run(cmd, log) != 0:
            return False, "".join(log)
    return True, "".join(log)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*")
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build", "cnnc"))
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--double", action="store_true", help="float64 reference")
    ap.add_argument("--exe-args", default=DEFAULT_EXE_ARGS)
    ap.add_argument("--keep", metavar="DIR", help="keep the files in DIR")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    if not os.access(a.cnnc, os.X_OK):
        print(f"run_diff.py: {a.cnnc} not built; skipping")
        return 77
    models = a.models or sorted(glob.glob(os.path.join(HERE, "models", "*.cnn")))
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        d = a.keep or tmp
        os.makedirs(d, exist_ok=True)
        for m in models:
            ok, log = one(m, a, d)
            print(f"{'ok' if ok else 'FAIL'} {os.path.basename(m)}")
            if not ok or a.verbose:
                print(log)
            passed, failed = passed + ok, failed + (not ok)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
