"""all-MiniLM-L6-v2's outputs in transformers: the oracle of
ImportTest's Import.MiniLmMatchesTransformers.

    .venv-peer/bin/python tests/data/hf/make_minilm_expected.py MODEL_DIR OUT

MODEL_DIR is what scripts/fetch-minilm.sh unpacks. Writes OUT
(tests/data/hf/minilm/expected.safetensors): the sentences' ids from the
model's own tokenizer (a batch padded on the right with [PAD] = 0),
their token types, the last hidden states and the sentence embeddings
(mean over real tokens, L2-normalized: sentence-transformers' pipeline).
The sentences are real text nobody here wrote: opening lines of licenses in
/usr/share/common-licenses (their text is in the file's metadata).
"""
import json
import sys

import torch
import transformers
from safetensors.torch import save_file

SENTENCES = [
    "The GNU General Public License is a free, copyleft license for software "
    "and other kinds of works.",
    "Licensed under the Apache License, Version 2.0.",
    "Redistribution and use in source and binary forms, with or without "
    "modification, are permitted provided that the following conditions are "
    "met:",
    "Everyone is permitted to copy and distribute verbatim copies of this "
    "license document, but changing it is not allowed.",
]


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModel.from_pretrained(
        model_dir, attn_implementation="eager").eval()
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    mean = (hidden * mask).sum(1) / mask.sum(1)
    embedding = torch.nn.functional.normalize(mean, dim=1)
    save_file({"tokens": batch["input_ids"].int().contiguous(),
               "segments": batch["token_type_ids"].int().contiguous(),
               "mask": batch["attention_mask"].int().contiguous(),
               "hidden": hidden.float().contiguous(),
               "embedding": embedding.float().contiguous()}, out,
              metadata={"sentences": json.dumps(SENTENCES)})


if __name__ == "__main__":
    main()
