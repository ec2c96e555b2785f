#!/usr/bin/env python3
"""PyTorch peer for Loom's KV-cache generation (bench/generate.sh).

Hugging Face transformers' GPT2LMHeadModel configured as Loom's GPT-mini
(examples/gpt.loom: learned positions, pre-norm layers, tanh GELU, layer norm
eps 1e-5, the output layer tied to the token table, no dropout) and loaded
with the weights of a Loom checkpoint (q/k/v concatenated into c_attn; Loom
and HF's Conv1D both store [in, out]). Greedy decoding with its own KV cache
(`use_cache=True`, past_key_values fed back), the loop people write around
model(...) under torch.inference_mode(): B prompts of N bytes from TEXT at
the offsets loom_generate_bench uses, one prefill, then --new steps.

Prints one machine-readable line:
  peer=hf-<transformers version>/torch-<version> threads=<n> batch=<B>
  prefill_ms=<median> decode_tps=<median> ids=<sequence 0's tokens>
or a `skip:` line when torch or transformers cannot be imported.
"""
import argparse
import statistics
import time

from common import import_torch, version


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("ckpt")
    p.add_argument("text")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--prompt", type=int, default=32)
    p.add_argument("--new", type=int, default=224)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--ctx", type=int, default=256)
    p.add_argument("--d", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    a = p.parse_args()
    torch = import_torch(a.threads)
    if torch is None:
        return
    try:
        import transformers
        from safetensors.torch import load_file
    except Exception as e:  # noqa: BLE001
        print(f"skip: transformers/safetensors not importable ({type(e).__name__}: {e})")
        return
    cfg = transformers.GPT2Config(
        vocab_size=a.vocab, n_positions=a.ctx, n_embd=a.d, n_layer=a.layers,
        n_head=a.heads, n_inner=4 * a.d, activation_function="gelu_new",
        layer_norm_epsilon=1e-5, resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, tie_word_embeddings=True, bos_token_id=None,
        eos_token_id=None)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    w = load_file(a.ckpt)
    sd = {"transformer.wte.weight": w["wte.weight"],
          "transformer.wpe.weight": w["wpe.weight"],
          "transformer.ln_f.weight": w["lnf.weight"],
          "transformer.ln_f.bias": w["lnf.bias"]}
    for i in range(a.layers):
        L, H = f"blocks.{i}.", f"transformer.h.{i}."
        att = L + "self_attn."
        sd[H + "ln_1.weight"], sd[H + "ln_1.bias"] = w[L + "ln1.weight"], w[L + "ln1.bias"]
        sd[H + "ln_2.weight"], sd[H + "ln_2.bias"] = w[L + "ln2.weight"], w[L + "ln2.bias"]
        sd[H + "attn.c_attn.weight"] = torch.cat(
            [w[att + n + ".weight"] for n in ("query", "key", "value")], dim=1)
        sd[H + "attn.c_attn.bias"] = torch.cat(
            [w[att + n + ".bias"] for n in ("query", "key", "value")])
        sd[H + "attn.c_proj.weight"], sd[H + "attn.c_proj.bias"] = (
            w[att + "out.weight"], w[att + "out.bias"])
        sd[H + "mlp.c_fc.weight"], sd[H + "mlp.c_fc.bias"] = (
            w[L + "mlp.fc1.weight"], w[L + "mlp.fc1.bias"])
        sd[H + "mlp.c_proj.weight"], sd[H + "mlp.c_proj.bias"] = (
            w[L + "mlp.fc2.weight"], w[L + "mlp.fc2.bias"])
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if m != "lm_head.weight" and ".attn.bias" not in m
               and ".attn.masked_bias" not in m]
    if missing or unexpected:
        raise SystemExit(f"weights do not match: missing {missing}, unexpected {unexpected}")
    model.tie_weights()

    data = open(a.text, "rb").read()
    prompts = torch.tensor([[data[b * 997 + i] for i in range(a.prompt)]
                            for b in range(a.batch)], dtype=torch.long)
    prefill, decode, ids = [], [], []
    with torch.inference_mode():
        for rep in range(a.repeats + 1):  # the first is warm-up
            t0 = time.perf_counter()
            out = model(prompts, use_cache=True)
            t1 = time.perf_counter()
            past, logits = out.past_key_values, out.logits[:, -1, :]
            ids = []
            for n in range(a.new):
                nxt = logits.argmax(-1)
                ids.append(int(nxt[0]))
                if n + 1 == a.new:
                    break
                out = model(nxt[:, None], past_key_values=past, use_cache=True)
                past, logits = out.past_key_values, out.logits[:, -1, :]
            t2 = time.perf_counter()
            if rep > 0:
                prefill.append(t1 - t0)
                decode.append(t2 - t1)
    d = statistics.median(decode)
    print(f"peer=hf-{transformers.__version__}/torch-{version(torch)} "
          f"threads={a.threads} batch={a.batch} "
          f"prefill_ms={statistics.median(prefill) * 1e3:.3f} "
          f"decode_tps={a.batch * a.new / d:.1f} ms_per_step={d / a.new * 1e3:.4f} "
          f"ids={','.join(map(str, ids))}")


if __name__ == "__main__":
    main()
