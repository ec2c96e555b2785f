"""What the PyTorch peers in bench/peer/ share: loading torch with a thread
count, and timing repeated calls."""
import os
import statistics
import time


def import_torch(threads):
    """torch with `threads` intra-op threads, or None after printing the
    `skip:` line the benchmark scripts look for."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)  # before torch starts its pools
    try:
        import torch
    except Exception as e:  # noqa: BLE001 (any failure to load means no peer)
        print(f"skip: torch is not importable ({type(e).__name__}: {e})")
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return torch


def time_calls(fn, warmup, repeats):
    """(median, min, max) in ms of `repeats` calls of fn after `warmup`."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times), max(times)


def version(torch):
    return torch.__version__.split("+")[0]
