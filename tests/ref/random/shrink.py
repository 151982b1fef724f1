#!/usr/bin/python3
"""shrink.py -- reduce a model that fails the PyTorch comparison to a small reproducer.

  shrink.py MODEL.cnn [--out FILE] [--vlen 16|8] [--size B] [--cnnc build/cnnc]
            [--test-ref build/tests/test_ref] [--work DIR] [--max-tries N]

Runs one model through the same pipeline as run_random.sh -- reference.py
suite's weights, batch and float64 trace (seed 1, B examples, 3 steps), then
build/tests/test_ref (cnnc build, the executable's trace, test_ref.c's
comparison) -- and, while it still fails the same way (cnnc build fails, the
trace fails, or tensors differ), greedily tries smaller variants: removing a
layer (a pool together with its unpool), removing an option or a setting line,
lowering a number (channels, units, kernel, stride, pad, dilation, input
size).  A variant counts only if cnnc check accepts it, the reference parses
it, and it passes gen_models.py's conditioning screen (else a variant could
"fail" for float32 rounding alone).  The smallest failing model is written to
tests/ref/regressions/NAME.cnn (NAME: the model's stem) with a header saying
what failed; `ref-test` picks up tests/ref/regressions/*.cnn.

--vlen, --size: the CNNC_VLEN and batch size the failure needs (run_random.sh's
shard A uses 16 and 4, shard B 8 and 5; the command it prints has them); without
--vlen both are tried on the original model and the first failing one is kept.  Exit 0 when a reproducer was written, 1 when the model does not
fail, 2 on usage errors.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path[:0] = [os.path.join(ROOT, "tests", "ref"), HERE]

import numpy as np          # noqa: E402
import cnnmodel             # noqa: E402
import reference            # noqa: E402
import refcompare           # noqa: E402
import gen_models           # noqa: E402

SETTINGS = ("model", "input", "optimizer", "batch", "epochs", "loss")


# ---------------------------------------------------------------- model text

def statements(text):
    """[[token, ...], ...]: comments dropped, one list per statement."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        for st in line.split(";"):
            toks = st.split()
            if toks:
                out.append(toks)
    return out


def render(stmts):
    return "".join(" ".join(t) + "\n" for t in stmts)


def is_layer(toks):
    return toks[0].lower() not in SETTINGS


def pool_pairs(stmts):
    """{statement index: partner index} for pool/maxpool and unpool brackets."""
    stack, pairs = [], {}
    for i, t in enumerate(stmts):
        w = t[0].lower()
        if w in ("pool", "maxpool"):
            stack.append(i)
        elif w == "unpool" and stack:
            j = stack.pop()
            pairs[i], pairs[j] = j, i
    return pairs


def smaller_ints(v, lo):
    """Candidate values below v, smallest first, all >= lo."""
    c = []
    for x in (lo, 1, v // 2, v - 1):
        if lo <= x < v and x not in c:
            c.append(x)
    return c


def shrink_number_text(text, lo):
    """'12' / '3x5' / '3x3x8' -> smaller variants, one side at a time and all at once."""
    parts = text.lower().split("x")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        return []
    out = []
    if len(nums) > 1 and len(set(nums)) > 1 and len(nums) == 2:
        m = min(nums)
        out.append(f"{m}")                          # 2x3 -> 2 (a square pair)
    for i, v in enumerate(nums):
        for s in smaller_ints(v, lo if not isinstance(lo, list) else lo[i]):
            n = list(nums)
            n[i] = s
            out.append("x".join(str(x) for x in n))
    return out


def variants(stmts):
    """Smaller models, roughly biggest cut first."""
    pairs = pool_pairs(stmts)
    layers = [i for i, t in enumerate(stmts) if is_layer(t)]
    # 1. remove a run of layers (halves, then single layers; a pool takes its unpool along)
    for size in (len(layers) // 2, 2, 1):
        if size < 1:
            continue
        for start in range(0, len(layers) - size + 1):
            drop = set(layers[start:start + size])
            for i in list(drop):
                if i in pairs:
                    drop.add(pairs[i])
            if len(drop) >= len(layers):
                continue
            yield [t for i, t in enumerate(stmts) if i not in drop]
    # 2. remove a setting line (not the input)
    for i, t in enumerate(stmts):
        if t[0].lower() in ("model", "batch", "epochs", "optimizer", "loss"):
            yield stmts[:i] + stmts[i + 1:]
    # 3. remove one option or flag
    for i, t in enumerate(stmts):
        for j in range(1, len(t)):
            if "=" in t[j] or t[j].lower() == "flip" or (t[0].lower() == "leakyrelu"):
                yield stmts[:i] + [t[:j] + t[j + 1:]] + stmts[i + 1:]
    # 4. simpler layer kinds
    for i, t in enumerate(stmts):
        w = t[0].lower()
        alt = {"dense": ["fc"], "maxpool": ["pool"], "sigmoid": ["relu"], "tanh": ["relu"],
               "leakyrelu": ["relu"], "softmax": ["relu"]}.get(w, [])
        for a in alt:
            yield stmts[:i] + [[a] + (t[1:] if w in ("dense", "maxpool") else [])] + stmts[i + 1:]
    # 5. smaller numbers
    for i, t in enumerate(stmts):
        w = t[0].lower()
        for j in range(1, len(t)):
            tok = t[j]
            if "=" in tok:
                k, v = tok.split("=", 1)
                lo = {"pad": 0, "outpad": 0, "stride": 1, "dilation": 1}.get(k.lower())
                if lo is None:
                    continue
                new = [f"{k}={s}" for s in shrink_number_text(v, lo)]
            elif w == "input":
                new = shrink_number_text(tok, 1)
            elif w in ("conv", "deconv", "fc", "dense", "pool", "maxpool", "avgpool"):
                new = shrink_number_text(tok, 1)
            else:
                continue
            for n in new:
                yield stmts[:i] + [t[:j] + [n] + t[j + 1:]] + stmts[i + 1:]


# ---------------------------------------------------------------- running one model

class Runner:
    def __init__(self, a):
        self.a = a
        self.work = a.work or tempfile.mkdtemp(prefix="cnnc-shrink-")
        os.makedirs(self.work, exist_ok=True)
        self.tries = 0
        self.cache = {}

    def valid(self, text, path):
        p = subprocess.run([self.a.cnnc, "check", path], capture_output=True, text=True)
        if p.returncode != 0:
            return None, "cnnc check: " + (p.stderr.strip().splitlines() or ["?"])[0]
        try:
            model = cnnmodel.parse_text(text, path)
        except Exception as e:
            return None, f"reference: {e}"
        return model, None

    def run(self, text, vlen, screen=True):
        """('pass'|'build'|'trace'|'mismatch'|'invalid', detail lines)."""
        key = (text, vlen, screen)
        if key in self.cache:
            return self.cache[key]
        self.tries += 1
        d = os.path.join(self.work, f"try{self.tries}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        name = self.a.name
        path = os.path.join(d, name + ".cnn")
        with open(path, "w") as f:
            f.write(text)
        model, why = self.valid(text, path)
        if model is None:
            res = ("invalid", [why])
        else:
            weights = reference.make_weights(model, 1)
            reference.randomize_bn(weights, 1)
            batch = reference.make_batch(model, 2, self.a.size)
            res = None
            if screen:
                try:
                    worst, what = gen_models.screen(model, self.a.size)
                except Exception as e:
                    worst, what = float("inf"), f"reference trace: {e}"
                if worst > gen_models.SCREEN:
                    res = ("invalid", [f"ill-conditioned: {what} ({worst:.2g})"])
            if res is None:
                opt = cnnmodel.optimizer_settings(model, None)
                try:
                    arrays, _ = reference.trace(model, weights, batch, 3, opt, double=True)
                    arrays["grad.input"] = refcompare.input_grad(model, weights, batch, True)   # as run_random.sh
                except Exception as e:     # e.g. no parameters left: reference.py cannot trace it
                    res = ("invalid", [f"reference trace: {e}"])
            if res is None:
                reference.save_npz(os.path.join(d, name + ".w.npz"), weights)
                reference.save_npz(os.path.join(d, name + ".b.npz"), batch)
                reference.save_npz(os.path.join(d, name + ".ref.npz"), arrays)
                with open(os.path.join(d, "list.txt"), "w") as f:
                    f.write(f"{name} {path}\n")
                env = dict(os.environ, CNNC_VLEN=str(vlen))
                p = subprocess.run([self.a.test_ref, d, self.a.cnnc], capture_output=True, text=True, env=env)
                out = p.stdout + p.stderr
                lines = [l for l in out.splitlines() if l.startswith(name + ":") or ":F:" in l or ":E:" in l]
                if p.returncode == 0:
                    res = ("pass", lines)
                elif "cnnc build failed" in out:
                    log = open(os.path.join(d, name + ".log")).read().strip().splitlines()
                    res = ("build", lines + log[-5:])
                elif "trace failed" in out:
                    log = open(os.path.join(d, name + ".log")).read().strip().splitlines()
                    res = ("trace", lines + log[-5:])
                else:
                    res = ("mismatch", [l for l in lines if ":F:" not in l])
        if res[0] in ("pass", "invalid"):
            shutil.rmtree(d, ignore_errors=True)
        self.cache[key] = res
        if self.a.verbose:
            print(f"  try {self.tries}: {res[0]}: {' | '.join(text.strip().splitlines())}", file=sys.stderr)
        return res


def mismatch_kinds(lines):
    """The kinds of arrays that differ (output, loss, losses, grad, after), for 'the same failure'."""
    kinds = set()
    for l in lines:
        m = re.match(r"[^:]+: (\S+)", l)
        if m:
            kinds.add(m.group(1).split(".")[0])
    return kinds


def main(argv=None):
    ap = argparse.ArgumentParser(description="shrink a failing model to a small reproducer")
    ap.add_argument("model")
    ap.add_argument("--out", help="default: tests/ref/regressions/NAME.cnn")
    ap.add_argument("--name", help="model name (default: the file's stem)")
    ap.add_argument("--vlen", type=int, choices=(8, 16))
    ap.add_argument("--size", type=int, default=4, help="batch size (default 4)")
    ap.add_argument("--cnnc", default=os.path.join(ROOT, "build", "cnnc"))
    ap.add_argument("--test-ref", default=os.path.join(ROOT, "build", "tests", "test_ref"))
    ap.add_argument("--work", help="keep the tries here (default: a temporary directory, removed)")
    ap.add_argument("--max-tries", type=int, default=400)
    ap.add_argument("--no-screen", action="store_true",
                    help="also accept ill-conditioned variants (for failures the screen itself hides)")
    ap.add_argument("--verbose", "-v", action="store_true")
    a = ap.parse_args(argv)
    a.cnnc, a.test_ref = os.path.abspath(a.cnnc), os.path.abspath(a.test_ref)
    a.name = a.name or re.sub(r"[^A-Za-z0-9_]", "_", os.path.splitext(os.path.basename(a.model))[0])
    out = a.out or os.path.join(ROOT, "tests", "ref", "regressions", a.name + ".cnn")
    text0 = open(a.model).read()
    origin = next((l[1:].strip() for l in text0.splitlines() if l.startswith("#")), "")
    stmts = statements(text0)
    r = Runner(a)
    screen = not a.no_screen

    vlens = [a.vlen] if a.vlen else [16, 8]
    base = None
    for v in vlens:
        res = r.run(render(stmts), v, screen)
        print(f"shrink.py: {a.name} with CNNC_VLEN={v}: {res[0]}")
        for l in res[1]:
            print("  " + l)
        if res[0] in ("build", "trace", "mismatch"):
            base, vlen = res, v
            break
    if base is None:
        print(f"shrink.py: {a.model} does not fail{' (or is ill-conditioned: try --no-screen)' if screen else ''}")
        if not a.work:
            shutil.rmtree(r.work, ignore_errors=True)
        return 1
    kind, kinds = base[0], mismatch_kinds(base[1])

    def same_failure(res):
        if res[0] != kind:
            return False
        return kind != "mismatch" or bool(mismatch_kinds(res[1]) & kinds)

    changed = True
    best = base
    while changed and r.tries < a.max_tries:
        changed = False
        for cand in variants(stmts):
            if r.tries >= a.max_tries:
                break
            if not any(is_layer(t) for t in cand):
                continue
            res = r.run(render(cand), vlen, screen)
            if same_failure(res):
                stmts, best, changed = cand, res, True
                nl = sum(is_layer(t) for t in stmts)
                print(f"  smaller ({nl} layers, try {r.tries}): {' ; '.join(' '.join(t) for t in stmts)}")
                break
    failed = [l for l in best[1]]
    lines = [f"# regression: {kind} -- shrunk by tests/ref/random/shrink.py from {origin or a.model}"]
    if vlen != 16 or a.size != 4:
        lines.append(f"# needs CNNC_VLEN={vlen} (the vector length of the tiled conv kernels) and batch size "
                     f"{a.size}; ref-test uses the host's vector length and batches of 4")
    lines.append("# what failed (test_ref):")
    lines += [f"#   {l}" for l in failed]
    text = "\n".join(lines) + "\n" + render(stmts)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    print(f"shrink.py: {r.tries} tries; wrote {out}:")
    print(text, end="")
    if not a.work:
        shutil.rmtree(r.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
