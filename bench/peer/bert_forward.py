#!/usr/bin/env python3
"""PyTorch peer for the `encode` function of examples/bert.loom (BERT-mini).

The same encoder, layer for layer: token + learned position + segment
embeddings, LayerNorm (eps 1e-12), then post-norm encoder layers
(nn.loom EncoderLayer: x = ln1(x + attn(x, mask)); ln2(x + mlp(x))) with
biased q/k/v/out projections, scale 1/sqrt(head dim), a key-padding mask
(tokens != 0), an MLP d -> 4d -> d with the tanh GELU and LayerNorm eps 1e-5.
Dropout is off (inference). Times the median of --repeats forward calls under
torch.no_grad() and prints one line:
  peer=torch-<version> threads=<n> ms=<median> min_ms=<min> max_ms=<max>
Prints a `skip:` line and exits 0 when torch cannot be imported.
"""
import argparse
import math
import sys

from common import import_torch, time_calls, version


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=11)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    a = p.parse_args()
    torch = import_torch(a.threads)
    if torch is None:
        return 0
    nn, F = torch.nn, torch.nn.functional

    class Layer(nn.Module):
        def __init__(self, d, heads):
            super().__init__()
            self.heads = heads
            self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
            self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-5), nn.LayerNorm(d, eps=1e-5)
            self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x, keep):  # keep: [B, 1, 1, T] bool
            B, T, D = x.shape
            split = lambda t: t.view(B, T, self.heads, D // self.heads).transpose(1, 2)
            o = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)),
                                               split(self.v(x)), attn_mask=keep)
            x = self.ln1(x + self.o(o.transpose(1, 2).reshape(B, T, D)))
            return self.ln2(x + self.fc2(F.gelu(self.fc1(x), approximate="tanh")))

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(a.vocab, a.d)
            self.pos = nn.Embedding(a.seq, a.d)
            self.seg = nn.Embedding(2, a.d)
            self.ln = nn.LayerNorm(a.d, eps=1e-12)
            self.layers = nn.ModuleList(Layer(a.d, a.heads) for _ in range(a.layers))

        def forward(self, tokens, segments):
            T = tokens.shape[1]
            h = self.ln(self.tok(tokens) + self.pos(torch.arange(T)) + self.seg(segments))
            keep = (tokens != 0)[:, None, None, :]
            for layer in self.layers:
                h = layer(h, keep)
            return h

    model = Encoder().eval()
    tokens = torch.randint(1, a.vocab, (a.batch, a.seq))
    segments = torch.randint(0, 2, (a.batch, a.seq))

    def call():
        with torch.no_grad():
            return model(tokens, segments)

    out = call()
    if not math.isfinite(out.sum().item()):
        print("error: non-finite output", file=sys.stderr)
        return 1
    med, lo, hi = time_calls(call, a.warmup, a.repeats)
    print(f"peer=torch-{version(torch)} threads={a.threads} "
          f"ms={med:.2f} min_ms={lo:.2f} max_ms={hi:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
