#!/usr/bin/env python3
"""PyTorch peer for bench/models/attention.loom: causal SDPA alone.

q, k, v: [1, H, T, D] (requires_grad for the backward). Times the median of
--repeats calls of the forward (under no_grad), or of forward + backward of
mean(o * o) with --backward, and prints one line:
  peer=torch-<version> threads=<n> T=<T> ms=<median> min_ms=<min> max_ms=<max> peak_rss_mb=<process peak>
Prints a `skip:` line and exits 0 when torch cannot be imported.
"""
import argparse
import resource
import sys

from common import import_torch, time_calls, version


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--t", type=int, default=1024)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--backward", action="store_true")
    a = p.parse_args()
    torch = import_torch(a.threads)
    if torch is None:
        return 0
    q, k, v = (torch.randn(1, a.heads, a.t, a.d, requires_grad=a.backward)
               for _ in range(3))
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def call():
        if not a.backward:
            with torch.no_grad():
                return sdpa(q, k, v, is_causal=True)
        for x in (q, k, v):
            x.grad = None
        o = sdpa(q, k, v, is_causal=True)
        (o * o).mean().backward()
        return o

    med, lo, hi = time_calls(call, a.warmup, a.repeats)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peer=torch-{version(torch)} threads={a.threads} "
          f"T={a.t} ms={med:.2f} min_ms={lo:.2f} max_ms={hi:.2f} "
          f"peak_rss_mb={rss:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
