"""Tokenizers and their ids from Hugging Face's `tokenizers`: the oracle of
tests/unit/TokenizerTest.cpp (loom::Tokenizer).

    .venv-peer/bin/python tests/data/hf/make_tokenizers.py OUT_DIR \
        [--minilm MODEL_DIR]

trains a small WordPiece (BERT's normalizer and pre-tokenizer, lower-cased)
and a small byte-level BPE (GPT-2's, and RoBERTa's with <s> </s> around the
texts) on /usr/share/common-licenses/GPL-3
plus the test sentences, saves them as both file formats each reads
(vocab.txt and tokenizer.json; vocab.json + merges.txt and tokenizer.json),
and writes expected.json: the sentences (unicode, accents, CJK, emoji,
numbers, punctuation, whitespace runs, contractions, control characters),
and for each tokenizer the ids of every sentence, of sentence pairs with
[CLS]/[SEP] and truncation, and the decoded text. With --minilm, also the
ids that all-MiniLM-L6-v2's own tokenizer gives (written to
expected-minilm.json).
"""
import argparse
import json
import os

from tokenizers import ByteLevelBPETokenizer, BertWordPieceTokenizer
from tokenizers import Tokenizer
from tokenizers.processors import BertProcessing, RobertaProcessing

SENTENCES = [
    "Hello, world! This is Loom.",
    "The quick brown fox jumps over the lazy dog... twice?!",
    "Café, naïve, résumé, Ångström and Øresund; ÉCOLE in capitals.",
    "Straße, İstanbul, ΣΟΦΙΑ and σοφία; Ελληνικά.",
    "中文分词测试：我们在北京。日本語のテキスト。",
    "Numbers: 3.14159, 1,000,000 and 2026-12-03 at 12:09 (UTC+0).",
    "Emoji 🙂🚀 and symbols ©®™ € £ ¥ ± × ÷ ≤ ≥ → ∞.",
    "She said “don't” — and I'll say it's fine; they're sure we've left.",
    "  Leading and   multiple    spaces\tand\ttabs\nand\nnewlines  ",
    "zero\u200bwidth\u00a0nbsp and a control \u0007 char",
    "URLs: https://example.org/path?q=1&x=%20 and e-mail a.b@c.de",
    "Combining accents: e\u0301 a\u0308 o\u0302 and pre-composed é ä ô.",
    "Arabic العربية, Hebrew עברית, Hindi हिन्दी, Thai ภาษาไทย.",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "x" * 120 + " long word",
    "",
]
PAIRS = [(0, 1), (2, 5), (7, 13)]
MAX_LENGTHS = [0, 12, 9]


def corpus():
    text = open("/usr/share/common-licenses/GPL-3", encoding="utf-8").read()
    return text.splitlines() + SENTENCES


def expected_for(tok, special):
    tok.no_truncation()
    tok.no_padding()
    out = {"ids": [tok.encode(s, add_special_tokens=False).ids
                   for s in SENTENCES]}
    if special:
        pairs = []
        for a, b in PAIRS:
            for n in MAX_LENGTHS:
                tok.no_truncation()
                if n:
                    tok.enable_truncation(n, strategy="longest_first")
                e = tok.encode(SENTENCES[a], SENTENCES[b])
                pairs.append({"a": a, "b": b, "max_length": n, "ids": e.ids,
                              "segments": e.type_ids})
        tok.no_truncation()
        out["pairs"] = pairs
    out["decoded"] = [tok.decode(ids) for ids in out["ids"]]
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--minilm")
    args = parser.parse_args()
    wp_dir = os.path.join(args.out, "wordpiece")
    bpe_dir = os.path.join(args.out, "bpe")
    os.makedirs(wp_dir, exist_ok=True)
    os.makedirs(bpe_dir, exist_ok=True)

    wp = BertWordPieceTokenizer(lowercase=True)
    wp.train_from_iterator(corpus(), vocab_size=400, min_frequency=1)
    wp.post_processor = BertProcessing(("[SEP]", wp.token_to_id("[SEP]")),
                                       ("[CLS]", wp.token_to_id("[CLS]")))
    wp.save_model(wp_dir)
    wp.save(os.path.join(wp_dir, "tokenizer.json"))
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus(), vocab_size=500, min_frequency=1)
    bpe.save_model(bpe_dir)
    bpe.save(os.path.join(bpe_dir, "tokenizer.json"))
    # RoBERTa's: the same byte-level BPE with <s> ... </s> around each text
    # and <pad> as the padding token.
    roberta_dir = os.path.join(args.out, "roberta")
    os.makedirs(roberta_dir, exist_ok=True)
    roberta = ByteLevelBPETokenizer()
    roberta.train_from_iterator(
        corpus(), vocab_size=500, min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    roberta.post_processor = RobertaProcessing(
        ("</s>", roberta.token_to_id("</s>")),
        ("<s>", roberta.token_to_id("<s>")))
    roberta.save(os.path.join(roberta_dir, "tokenizer.json"))

    expected = {"sentences": SENTENCES,
                "wordpiece": expected_for(
                    Tokenizer.from_file(os.path.join(wp_dir,
                                                     "tokenizer.json")), True),
                "bpe": expected_for(
                    Tokenizer.from_file(os.path.join(bpe_dir,
                                                     "tokenizer.json")),
                    False),
                "roberta": expected_for(
                    Tokenizer.from_file(os.path.join(roberta_dir,
                                                     "tokenizer.json")),
                    True)}
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
    if args.minilm:
        tok = Tokenizer.from_file(os.path.join(args.minilm, "tokenizer.json"))
        with open(os.path.join(args.out, "expected-minilm.json"), "w") as f:
            json.dump({"sentences": SENTENCES, "minilm": expected_for(tok, True)},
                      f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
