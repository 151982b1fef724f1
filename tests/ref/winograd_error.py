#!/usr/bin/python3
"""How much more float32 rounding Winograd F(4x4,3x3) carries than F(2x2,3x3).

A numpy model of the generated kernels' arithmetic, independent of cnnc: a
4x4 (or 2x2) block of a 3x3 convolution summed over 32 input channels, with
every stage (the transforms of the weights and of the input, the products, the
running sum over channels, the output transform) rounded to float32, against
the same block in float64.  Prints the median, over 40 random draws, of the
largest error relative to the largest output, for each block size, and their
ratio.  ref.mk widens the PyTorch comparison's tolerance for --winograd 4
builds by a factor chosen from this ratio (test_ref --tolerance-scale);
--check S fails when S is more than 10% below it."""
import numpy as np

F2 = (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float),
      np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]]),
      np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float))
F4 = (np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], float),
      np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
      np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], float))


def block_error(algo, seed, channels=32):
    bt, g_, at = algo
    n, m = bt.shape[0], at.shape[0]
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((channels, n, n))
    g = rng.standard_normal((channels, 3, 3))
    exact = sum(np.array([[np.sum(d[c, i:i + 3, j:j + 3] * g[c]) for j in range(m)] for i in range(m)])
                for c in range(channels))
    f = np.float32
    U = np.einsum('ab,cbd,ed->cae', g_.astype(f), g.astype(f), g_.astype(f)).astype(f)
    V = np.einsum('ab,cbd,ed->cae', bt.astype(f), d.astype(f), bt.astype(f)).astype(f)
    M = np.zeros((n, n), f)
    for c in range(channels):           # the register tile's running sum, channel by channel
        M = (M + (U[c] * V[c]).astype(f)).astype(f)
    Y = (at.astype(f) @ M @ at.T.astype(f)).astype(f)
    return float(np.abs(Y - exact).max() / np.abs(exact).max())


if __name__ == "__main__":
    import sys
    e2 = np.median([block_error(F2, s) for s in range(40)])
    e4 = np.median([block_error(F4, s) for s in range(40)])
    print(f"float32 rounding, largest error over largest output: F(2x2,3x3) {e2:.2e}, "
          f"F(4x4,3x3) {e4:.2e}, ratio {e4 / e2:.1f}")
    # --check S: fail when S, the tolerance scale ref.mk uses, is below the modelled ratio
    if len(sys.argv) == 3 and sys.argv[1] == "--check" and e4 / e2 > float(sys.argv[2]) * 1.1:
        sys.exit(f"winograd_error.py: the tolerance scale {sys.argv[2]} is below the modelled ratio {e4 / e2:.1f}")
