#!/usr/bin/env python3
"""PyTorch peer for one f32 GEMM C[M, N] = A[M, K] @ B[K, N] (bench/models/gemm.loom).

Times the median of --repeats calls of torch.matmul into a preallocated output
(after --warmup calls) on random inputs and prints one line:
  peer=torch-<version> threads=<n> ms=<median> min_ms=<min> max_ms=<max> gflops=<median rate>
Prints a `skip:` line and exits 0 when torch cannot be imported.
"""
import argparse
import sys

from common import import_torch, time_calls, version


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--m", type=int, default=1024)
    p.add_argument("--k", type=int, default=1024)
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=11)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args()
    torch = import_torch(a.threads)
    if torch is None:
        return 0
    x = torch.randn(a.m, a.k)
    y = torch.randn(a.k, a.n)
    out = torch.empty(a.m, a.n)
    med, lo, hi = time_calls(lambda: torch.matmul(x, y, out=out), a.warmup,
                             a.repeats)
    print(f"peer=torch-{version(torch)} threads={a.threads} "
          f"ms={med:.3f} min_ms={lo:.3f} max_ms={hi:.3f} "
          f"gflops={2.0 * a.m * a.n * a.k / med / 1e6:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
