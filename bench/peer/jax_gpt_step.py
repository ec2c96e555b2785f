#!/usr/bin/env python3
"""JAX (XLA, CPU) peer for the compile time of Loom's GPT-mini.

The model of bench/peer/gpt_train_step.py (and examples/gpt.loom) in plain
jax.numpy: token embedding + learned positions, pre-norm decoder layers
(causal self-attention with biased q/k/v/out projections, an MLP d -> 4d ->
d with the tanh GELU), layer norms with eps 1e-5, a final layer norm and an
output layer tied to the token embedding; the mean cross-entropy against the
tokens shifted by one. The layers are a Python loop, as in the usual JAX GPT
code (so XLA sees every layer; --scan uses lax.scan over stacked layer
weights instead, which XLA compiles once).

Measures, for jax.jit of
  forward: the loss, and
  step:    value_and_grad of the loss + optax.adamw (lr 1e-3, weight decay
           0.01) + apply_updates,
the compile time (lower + compile, a fresh process has nothing cached; the
persistent compilation cache is off), then the median of --repeats calls,
and prints one machine-readable line:
  peer=jax-<version> threads=<n> compile_fwd_s=<s> compile_step_s=<s>
  fwd_ms=<median> step_ms=<median> ...

Run it with the interpreter of scripts/jax-venv.sh:
  .venv-jax/bin/python bench/peer/jax_gpt_step.py --threads 2
Prints a `skip:` line and exits 0 when jax or optax cannot be imported.
"""
import argparse
import math
import os
import sys
import time

from common import time_calls


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2,
                   help="1: single-threaded XLA; otherwise XLA's default "
                        "pool (every core)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--ctx", type=int, default=256)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--scan", action="store_true",
                   help="layers as lax.scan over stacked weights")
    a = p.parse_args()
    if a.d % a.heads:
        p.error("--d must be divisible by --heads")
    return a


def main():
    args = parse_args()
    if args.threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false"
                                   " intra_op_parallelism_threads=1")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        import jax
        import jax.numpy as jnp
        import optax
    except Exception as e:  # noqa: BLE001 (any failure to load means no peer)
        print(f"skip: jax/optax not importable ({type(e).__name__}: {e}); "
              f"run scripts/jax-venv.sh and use .venv-jax/bin/python")
        return 0
    jax.config.update("jax_enable_compilation_cache", False)

    B, T, V, D, H, L = (args.batch, args.ctx, args.vocab, args.d, args.heads,
                        args.layers)
    key = jax.random.PRNGKey(0)
    keys = iter(jax.random.split(key, 8 * L + 8))
    normal = lambda *shape: 0.02 * jax.random.normal(next(keys), shape, jnp.float32)
    zeros = lambda *shape: jnp.zeros(shape, jnp.float32)
    ones = lambda *shape: jnp.ones(shape, jnp.float32)

    def layer_params():
        return {"ln1_w": ones(D), "ln1_b": zeros(D),
                "wq": normal(D, D), "bq": zeros(D), "wk": normal(D, D), "bk": zeros(D),
                "wv": normal(D, D), "bv": zeros(D), "wo": normal(D, D), "bo": zeros(D),
                "ln2_w": ones(D), "ln2_b": zeros(D),
                "fc1": normal(D, 4 * D), "b1": zeros(4 * D),
                "fc2": normal(4 * D, D), "b2": zeros(D)}

    layers = [layer_params() for _ in range(L)]
    params = {"wte": normal(V, D), "wpe": normal(T, D), "lnf_w": ones(D),
              "lnf_b": zeros(D)}
    if args.scan:
        params["layers"] = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *layers)
    else:
        params["layers"] = layers

    def layer_norm(x, w, b):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / jnp.sqrt(var + 1e-5) * w + b

    mask = jnp.tril(jnp.ones((T, T), bool))

    def block(h, p):
        x = layer_norm(h, p["ln1_w"], p["ln1_b"])
        split = lambda t: t.reshape(B, T, H, D // H).transpose(0, 2, 1, 3)
        q, k, v = (split(x @ p[w] + p[b]) for w, b in
                   (("wq", "bq"), ("wk", "bk"), ("wv", "bv")))
        s = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(D // H))
        s = jnp.where(mask, s, -jnp.inf)
        o = jax.nn.softmax(s, axis=-1) @ v
        h = h + o.transpose(0, 2, 1, 3).reshape(B, T, D) @ p["wo"] + p["bo"]
        x = layer_norm(h, p["ln2_w"], p["ln2_b"])
        return h + jax.nn.gelu(x @ p["fc1"] + p["b1"], approximate=True) @ p["fc2"] + p["b2"]

    def loss_fn(params, tokens, targets):
        h = params["wte"][tokens] + params["wpe"][None, :T]
        if args.scan:
            h, _ = jax.lax.scan(lambda c, p: (block(c, p), None), h, params["layers"])
        else:
            for p in params["layers"]:
                h = block(h, p)
        logits = layer_norm(h, params["lnf_w"], params["lnf_b"]) @ params["wte"].T
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.take_along_axis(logp, targets[..., None], axis=-1).mean()

    opt = optax.adamw(1e-3, weight_decay=0.01)
    opt_state = opt.init(params)

    def step(params, opt_state, tokens, targets):
        loss, grads = jax.value_and_grad(loss_fn)(params, tokens, targets)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    data = jax.random.randint(next(keys), (B, T + 1), 0, V, jnp.int32)
    tokens, targets = data[:, :-1], data[:, 1:]

    t0 = time.perf_counter()
    fwd = jax.jit(loss_fn).lower(params, tokens, targets).compile()
    compile_fwd = time.perf_counter() - t0
    t0 = time.perf_counter()
    stp = jax.jit(step).lower(params, opt_state, tokens, targets).compile()
    compile_step = time.perf_counter() - t0

    loss0 = float(fwd(params, tokens, targets))
    if not math.isfinite(loss0):
        print(f"error: loss is {loss0}", file=sys.stderr)
        return 1
    fwd_ms, _, _ = time_calls(
        lambda: fwd(params, tokens, targets).block_until_ready(),
        args.warmup, args.repeats)
    state = [params, opt_state]

    def one_step():
        state[0], state[1], loss = stp(state[0], state[1], tokens, targets)
        loss.block_until_ready()

    step_ms, step_min, step_max = time_calls(one_step, args.warmup, args.repeats)
    count = sum(x.size for x in jax.tree_util.tree_leaves(params))
    print(f"peer=jax-{jax.__version__} threads={args.threads} "
          f"compile_fwd_s={compile_fwd:.2f} compile_step_s={compile_step:.2f} "
          f"fwd_ms={fwd_ms:.1f} step_ms={step_ms:.1f} step_min_ms={step_min:.1f} "
          f"step_max_ms={step_max:.1f} params={count} layers={L} "
          f"scan={int(args.scan)} loss0={loss0:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
