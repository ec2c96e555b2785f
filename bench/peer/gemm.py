#!/usr/bin/env python3
"""PyTorch peer for one f32 GEMM C[M, N] = A[M, K] @ B[K, N] (bench/models/gemm.loom).

Times the median of --repeats calls of torch.matmul into a preallocated output
(after --warmup calls) on random inputs and prints one line:
  peer=torch-<version> threads=<n> ms=<median> min_ms=<min> max_ms=<max> gflops=<median rate>
Prints a `skip:` line and exits 0 when torch cannot be imported.
"""
import argparse
import os
import statistics
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--m", type=int, default=1024)
    p.add_argument("--k", type=int, default=1024)
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=11)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    try:
        import torch
    except Exception as e:  # noqa: BLE001 (any failure to load means no peer)
        print(f"skip: torch is not importable ({type(e).__name__}: {e})")
        return 0
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = torch.randn(a.m, a.k)
    y = torch.randn(a.k, a.n)
    out = torch.empty(a.m, a.n)
    for _ in range(a.warmup):
        torch.matmul(x, y, out=out)
    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        torch.matmul(x, y, out=out)
        times.append((time.perf_counter() - t0) * 1e3)
    med = statistics.median(times)
    print(f"peer=torch-{torch.__version__.split('+')[0]} threads={a.threads} "
          f"ms={med:.3f} min_ms={min(times):.3f} max_ms={max(times):.3f} "
          f"gflops={2.0 * a.m * a.n * a.k / med / 1e6:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
