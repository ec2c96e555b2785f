"""Small random Hugging Face models and their outputs: the oracle of
tests/e2e/ImportTest.cpp (`loomc import` and examples/hf/bert.loom,
examples/gpt.loom against transformers).

    .venv-peer/bin/python tests/data/hf/make_models.py OUT_DIR [--seed N]

writes OUT_DIR/<arch>/{config.json, model.safetensors, expected.safetensors}
for arch in bert, roberta, distilbert, albert (3 layers sharing one
parameter set) and gpt2. Every parameter is drawn at
random (layer norms too: no test on constant data). expected.safetensors
holds the inputs (tokens, segments, targets; int32) and transformers'
outputs: `hidden` (last_hidden_state, padding rows included) for the
encoders, `logits` and `loss` (mean next-token cross-entropy) for GPT-2.
The files under tests/data/hf/ were made by this script with --seed 0
(transformers 5.24, torch 2.15); the test also reruns it with another seed
when .venv-peer has transformers.
"""
import argparse
import os

import torch
import transformers
from safetensors.torch import save_file

B, T = 3, 9
LENGTHS = [9, 6, 3]  # right padding after the real tokens


def randomize(model, generator):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    return model


def tokens_with_padding(vocab, pad, generator):
    ids = torch.randint(0, vocab, (B, T), generator=generator)
    # No real token equals pad (padding is recognized by its id).
    ids = torch.where(ids == pad, (ids + 1) % vocab, ids)
    mask = torch.zeros(B, T, dtype=torch.long)
    for b, n in enumerate(LENGTHS):
        mask[b, :n] = 1
    return torch.where(mask.bool(), ids, torch.full_like(ids, pad)), mask


def encoder(arch, out, generator):
    common = dict(vocab_size=120, max_position_embeddings=40)
    if arch == "albert":
        config = transformers.AlbertConfig(
            embedding_size=16, hidden_size=32, num_hidden_layers=3,
            num_attention_heads=4, intermediate_size=64, pad_token_id=0,
            layer_norm_eps=1e-12, **common)
        model = transformers.AlbertModel(config)
        pad = 0
    elif arch == "distilbert":
        config = transformers.DistilBertConfig(
            dim=32, n_layers=2, n_heads=4, hidden_dim=64, pad_token_id=0,
            **common)
        model = transformers.DistilBertModel(config)
        pad = 0
    else:
        cls = (transformers.RobertaConfig if arch == "roberta"
               else transformers.BertConfig)
        pad = 1 if arch == "roberta" else 0
        config = cls(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, pad_token_id=pad,
                     type_vocab_size=1 if arch == "roberta" else 2,
                     layer_norm_eps=1e-12, **common)
        model = (transformers.RobertaModel if arch == "roberta"
                 else transformers.BertModel)(config)
    model = randomize(model.eval(), generator)
    tokens, mask = tokens_with_padding(120, pad, generator)
    segments = torch.zeros(B, T, dtype=torch.long)
    if arch in ("bert", "albert"):
        segments = torch.randint(0, 2, (B, T), generator=generator)
    kwargs = dict(input_ids=tokens, attention_mask=mask)
    if arch != "distilbert":
        kwargs["token_type_ids"] = segments
    with torch.no_grad():
        hidden = model(**kwargs).last_hidden_state
    model.save_pretrained(out, safe_serialization=True)
    save_file({"tokens": tokens.int().contiguous(),
               "segments": segments.int().contiguous(),
               "mask": mask.int().contiguous(),
               "hidden": hidden.float().contiguous()},
              os.path.join(out, "expected.safetensors"))


def gpt2(out, generator):
    config = transformers.GPT2Config(vocab_size=120, n_positions=40, n_embd=32,
                                     n_layer=2, n_head=4, bos_token_id=0,
                                     eos_token_id=0)
    model = randomize(transformers.GPT2LMHeadModel(config).eval(), generator)
    model.tie_weights()
    tokens = torch.randint(0, 120, (B, T), generator=generator)
    targets = torch.randint(0, 120, (B, T), generator=generator)
    with torch.no_grad():
        logits = model(input_ids=tokens).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 120),
                                                 targets.reshape(-1))
    model.save_pretrained(out, safe_serialization=True)
    save_file({"tokens": tokens.int().contiguous(),
               "targets": targets.int().contiguous(),
               "logits": logits.float().contiguous(),
               "loss": loss.reshape(1).float()},
              os.path.join(out, "expected.safetensors"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    for arch in ["bert", "roberta", "distilbert", "albert", "gpt2"]:
        out = os.path.join(args.out, arch)
        os.makedirs(out, exist_ok=True)
        if arch == "gpt2":
            gpt2(out, generator)
        else:
            encoder(arch, out, generator)
        for name in os.listdir(out):  # keep only what the test reads
            if name not in ("config.json", "model.safetensors",
                            "expected.safetensors"):
                os.remove(os.path.join(out, name))


if __name__ == "__main__":
    main()
