#!/usr/bin/env python3
"""PyTorch (cuBLAS, SDPA) peer of bench/gpu.sh on one CUDA GPU.

Times, with CUDA events after warm-up, the median of --repeats calls of:
  gemm_f32     4096^3 f32 matmul, TF32 off (what Loom's f32 kernels compute)
  gemm_tf32    the same with TF32 tensor cores
  gemm_bf16    the same in bf16
  attn_fwd     causal scaled_dot_product_attention, B 4, H 16, T 4096, Dh 64, f32
  attn_fwdbwd  the same, forward and backward
  gpt_step     GPT-mini (examples/gpt.loom: d 256, 4 layers, 4 heads, vocab
               256, B 8, T 256) loss + backward + AdamW, f32, SDPA attention
and prints one line per work: `peer <name> <median ms> <min ms>`.
Prints a `skip:` line and exits 0 without torch or CUDA.
"""
import argparse
import math
import statistics
import sys


def timed(torch, fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times), min(times)


def gpt(torch, vocab=256, ctx=256, d=256, layers=4, heads=4):
    nn, F = torch.nn, torch.nn.functional

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x):
            B, T, D = x.shape
            h = self.ln1(x)
            split = lambda t: t.view(B, T, heads, D // heads).transpose(1, 2)
            a = F.scaled_dot_product_attention(split(self.q(h)), split(self.k(h)),
                                               split(self.v(h)), is_causal=True)
            x = x + self.o(a.transpose(1, 2).reshape(B, T, D))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
            self.blocks = nn.ModuleList(Layer() for _ in range(layers))
            self.lnf = nn.LayerNorm(d)

        def forward(self, tokens, targets):
            T = tokens.shape[1]
            h = self.wte(tokens) + self.wpe(torch.arange(T, device=tokens.device))
            for b in self.blocks:
                h = b(h)
            logits = self.lnf(h) @ self.wte.weight.T
            return F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))

    return GPT()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args()
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        print(f"skip: torch is not importable ({type(e).__name__}: {e})")
        return 0
    if not torch.cuda.is_available():
        print("skip: torch sees no CUDA device")
        return 0
    dev = torch.device("cuda")
    torch.manual_seed(0)
    print(f"peer-version torch-{torch.__version__} {torch.cuda.get_device_name()}")
    n = 4096
    for name, dtype, tf32 in (("gemm_f32", torch.float32, False),
                              ("gemm_tf32", torch.float32, True),
                              ("gemm_bf16", torch.bfloat16, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        x = torch.randn(n, n, device=dev, dtype=dtype)
        y = torch.randn(n, n, device=dev, dtype=dtype)
        med, lo = timed(torch, lambda: x @ y, a.warmup, a.repeats)
        print(f"peer {name} {med:.4f} {lo:.4f}")
    torch.backends.cuda.matmul.allow_tf32 = False
    F = torch.nn.functional
    B, H, T, D = 4, 16, 4096, 64
    q, k, v = (torch.randn(B, H, T, D, device=dev, requires_grad=True)
               for _ in range(3))
    med, lo = timed(torch, lambda: F.scaled_dot_product_attention(
        q, k, v, is_causal=True), a.warmup, a.repeats)
    print(f"peer attn_fwd {med:.4f} {lo:.4f}")

    def fwdbwd():
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        (o * o).mean().backward()
    med, lo = timed(torch, fwdbwd, a.warmup, a.repeats)
    print(f"peer attn_fwdbwd {med:.4f} {lo:.4f}")
    model = gpt(torch).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = torch.randint(0, 256, (8, 257), device=dev)
    tokens, targets = data[:, :-1].contiguous(), data[:, 1:].contiguous()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(tokens, targets)
        loss.backward()
        opt.step()
    med, lo = timed(torch, step, a.warmup, a.repeats)
    print(f"peer gpt_step {med:.4f} {lo:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
