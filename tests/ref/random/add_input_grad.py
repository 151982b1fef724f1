#!/usr/bin/python3
"""add_input_grad.py DIR -- add grad.input (dLoss/dx, [B,H,W,C], float64) to every
DIR/NAME.ref.npz that `reference.py suite` wrote (DIR/list.txt), so that
test_ref also compares the executable's grad.input (runtime/trace.c writes it):
the input-gradient kernels of the first layer, which training itself never runs."""
import os
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), HERE]
import numpy as np          # noqa: E402
import cnnmodel             # noqa: E402
import reference            # noqa: E402
import refcompare           # noqa: E402


def main(d):
    n = 0
    for line in open(os.path.join(d, "list.txt")):
        if not line.strip():
            continue
        name, path = line.split()
        base = os.path.join(d, name)
        model = cnnmodel.parse_file(path)
        ref = dict(np.load(base + ".ref.npz"))
        ref["grad.input"] = refcompare.input_grad(model, dict(np.load(base + ".w.npz")),
                                                  dict(np.load(base + ".b.npz")), True)
        reference.save_npz(base + ".ref.npz", ref)
        n += 1
    print(f"add_input_grad.py: grad.input added to {n} reference traces")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: add_input_grad.py DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
