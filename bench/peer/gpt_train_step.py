#!/usr/bin/env python3
"""PyTorch peer for Loom's GPT-mini (examples/gpt.loom with frontend/lib/nn.loom).

The same model, layer for layer: token embedding + learned positions, pre-norm
decoder layers (causal self-attention with biased q/k/v/out projections, scale
1/sqrt(head dim); an MLP d -> 4d -> d with the tanh form of GELU, which is
nn.loom's default `gelu(x, approximate = true)`), layer norms with eps 1e-5,
a final layer norm and an output layer tied to the token embedding; the loss
is the mean cross-entropy against the tokens shifted by one. Dropout is 0, as
in gpt.loom, so it is left out. 3,290,624 parameters at the default sizes,
the count `loomc compile --emit=loom examples/gpt.loom` declares.

Times, after warm-up, the median of --repeats calls of
  forward: the loss under torch.no_grad() (Loom's `loss` entry), and
  step:    zero_grad + loss + backward + AdamW step (lr 1e-3, torch defaults),
and prints one machine-readable line:
  peer=torch-<version> threads=<n> fwd_ms=<median> step_ms=<median> params=<count> ...

Run it with the interpreter of scripts/peer-venv.sh:
  .venv-peer/bin/python bench/peer/gpt_train_step.py --threads 1 --repeats 10
Prints a `skip:` line and exits 0 when torch cannot be imported.
"""
import argparse
import math
import os
import sys

from common import time_calls


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--repeats", type=int, default=10, help="timed calls of each (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    p.add_argument("--batch", type=int, default=8, help="B (default 8)")
    p.add_argument("--ctx", type=int, default=256,
                   help="the model's context length, and T unless --seq (default 256)")
    p.add_argument("--seq", type=int, default=None, help="T, at most --ctx (default --ctx)")
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--attn", choices=["sdpa", "naive"], default="sdpa",
                   help="sdpa: F.scaled_dot_product_attention (fused, what users "
                        "pick); naive: matmul, mask, softmax, matmul")
    p.add_argument("--optim", choices=["default", "foreach", "fused"], default="default",
                   help="AdamW implementation (default: torch's choice for CPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", choices=["both", "fwd", "step"], default="both",
                   help="time only the forward or only the step (the other "
                        "prints as nan)")
    a = p.parse_args()
    a.seq = a.seq or a.ctx
    if a.seq > a.ctx or a.d % a.heads:
        p.error("need --seq <= --ctx and --d divisible by --heads")
    return a


def build(args, torch):
    nn, F = torch.nn, torch.nn.functional

    def linear(n_in, n_out):  # nn.loom Linear: normal(0.02) weight, zero bias
        m = nn.Linear(n_in, n_out)
        nn.init.normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)
        return m

    class Attention(nn.Module):  # nn.loom MultiHeadAttention, self-attention
        def __init__(self, d, heads):
            super().__init__()
            self.heads = heads
            self.query, self.key, self.value, self.out = (linear(d, d) for _ in range(4))

        def forward(self, x):
            B, T, D = x.shape
            split = lambda t: t.view(B, T, self.heads, D // self.heads).transpose(1, 2)
            q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
            if args.attn == "sdpa":
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D // self.heads))
                mask = torch.ones(T, T, dtype=torch.bool).triu(1)
                o = s.masked_fill(mask, float("-inf")).softmax(-1) @ v
            return self.out(o.transpose(1, 2).reshape(B, T, D))

    class DecoderLayer(nn.Module):  # nn.loom DecoderLayer, pre_norm = true
        def __init__(self, d, heads):
            super().__init__()
            self.self_attn = Attention(d, heads)
            self.ln1 = nn.LayerNorm(d, eps=1e-5)
            self.fc1, self.fc2 = linear(d, 4 * d), linear(4 * d, d)
            self.ln2 = nn.LayerNorm(d, eps=1e-5)

        def forward(self, x):
            x = x + self.self_attn(self.ln1(x))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(args.vocab, args.d)
            self.wpe = nn.Embedding(args.ctx, args.d)
            nn.init.normal_(self.wte.weight, std=0.02)
            nn.init.normal_(self.wpe.weight, std=0.02)
            self.blocks = nn.ModuleList(DecoderLayer(args.d, args.heads)
                                        for _ in range(args.layers))
            self.lnf = nn.LayerNorm(args.d, eps=1e-5)

        def forward(self, tokens, targets):
            T = tokens.shape[1]
            h = self.wte(tokens) + self.wpe(torch.arange(T))
            for block in self.blocks:
                h = block(h)
            logits = self.lnf(h) @ self.wte.weight.T  # tied output layer
            return F.cross_entropy(logits.reshape(-1, args.vocab), targets.reshape(-1))

    return GPT()


def main():
    args = parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before torch starts its pools
    try:
        import warnings
        warnings.filterwarnings("ignore", message=".*NumPy.*")
        import torch
    except Exception as e:  # noqa: BLE001 (any failure to load means no peer)
        print(f"skip: torch is not importable ({type(e).__name__}: {e}); "
              f"run scripts/peer-venv.sh and use .venv-peer/bin/python")
        return 0
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    model = build(args, torch)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    data = torch.randint(0, args.vocab, (args.batch, args.seq + 1), dtype=torch.long)
    tokens, targets = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    kw = {} if args.optim == "default" else {args.optim: True}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, **kw)

    def forward():
        with torch.no_grad():
            return model(tokens, targets)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(tokens, targets)
        loss.backward()
        opt.step()
        return loss

    loss0 = forward().item()  # ~ln(vocab) at initialisation
    if not math.isfinite(loss0):
        print(f"error: loss is {loss0}", file=sys.stderr)
        return 1
    nan = (float("nan"),) * 3
    fwd, fwd_min, fwd_max = (time_calls(forward, args.warmup, args.repeats)
                             if args.only != "step" else nan)
    stp, stp_min, stp_max = (time_calls(step, args.warmup, args.repeats)
                             if args.only != "fwd" else nan)
    tokens_per_call = args.batch * args.seq
    print(f"peer=torch-{torch.__version__.split('+')[0]} threads={args.threads} "
          f"fwd_ms={fwd:.1f} step_ms={stp:.1f} params={params} "
          f"fwd_min_ms={fwd_min:.1f} step_min_ms={stp_min:.1f} "
          f"fwd_max_ms={fwd_max:.1f} step_max_ms={stp_max:.1f} "
          f"step_tok_s={tokens_per_call / stp * 1e3:.0f} batch={args.batch} "
          f"seq={args.seq} ctx={args.ctx} repeats={args.repeats} attn={args.attn} "
          f"optim={args.optim} loss0={loss0:.4f} "
          f"cpu={torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends.cpu, 'get_cpu_capability') else '?'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
