"""Tiny, randomly initialised models for tests: seconds to train on one CPU core.

Each builder trains its tokenizer on the given corpus, so the vocabulary covers the test data with
a few hundred tokens, and saves a folder that loads like any local base model. They mirror the
real bases on the points the training code must handle:

- the causal LM is a Qwen2 (Llama-like, as SmolLM2) with a ChatML template that carries
  `{% generation %}` markers;
- the encoder is a BERT saved without a head (as all-MiniLM-L6-v2), whose tokenizer has no EOS.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from training.templates import chatml_training_template

# Roles of the special tokens, in the keyword form PreTrainedTokenizerFast takes them.
CHAT_ROLES = {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>", "pad_token": "<|pad|>"}
CHAT_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
BERT_ROLES = {
    "unk_token": "[UNK]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}
BERT_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _with_chat_markup(corpus: Iterable[str]) -> list[str]:
    # ChatML's role names and newlines appear in every training sequence; seeing them here gives
    # them their own merges.
    lines = list(corpus)
    return [*lines, "user\nassistant\nsystem\n"] if lines else ["user\nassistant\nsystem\n"]


def build_tiny_causal_lm(
    out_dir: Path,
    corpus: Iterable[str],
    *,
    vocab_size: int = 512,
    hidden_size: int = 32,
    num_layers: int = 2,
    max_length: int = 64,
    seed: int = 0,
) -> Path:
    """A 2-layer Qwen2 with a byte-level BPE tokenizer and a ChatML template with generation markers."""
    out_dir = Path(out_dir)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        _with_chat_markup(corpus),
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=CHAT_SPECIAL_TOKENS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        **CHAT_ROLES,
        model_max_length=max_length,
        chat_template=chatml_training_template(),
    )
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=max_length,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_tiny_encoder(
    out_dir: Path,
    corpus: Iterable[str],
    *,
    vocab_size: int = 512,
    hidden_size: int = 32,
    num_layers: int = 2,
    max_length: int = 64,
    seed: int = 0,
) -> Path:
    """A 2-layer BERT encoder without a head, and a WordPiece tokenizer without an EOS token.

    AutoModelForSequenceClassification adds the (random) regression head when the reward
    trainer loads it, exactly as it does for all-MiniLM-L6-v2.
    """
    out_dir = Path(out_dir)
    wordpiece = Tokenizer(models.WordPiece(unk_token=BERT_ROLES["unk_token"]))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wordpiece.decoder = decoders.WordPiece()
    wordpiece.train_from_iterator(
        list(corpus),
        trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=BERT_SPECIAL_TOKENS, show_progress=False
        ),
    )
    cls_id, sep_id = wordpiece.token_to_id("[CLS]"), wordpiece.token_to_id("[SEP]")
    wordpiece.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=wordpiece,
        **BERT_ROLES,
        model_max_length=max_length,
    )
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=max_length,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


COLOR_OF = {
    "sky": "blue",
    "grass": "green",
    "sun": "yellow",
    "snow": "white",
    "coal": "black",
    "rose": "red",
    "sea": "blue",
    "lemon": "yellow",
    "cloud": "grey",
    "plum": "purple",
    "milk": "white",
    "leaf": "green",
}
THINGS = tuple(COLOR_OF)
FILLERS = ("really", "very", "quite", "surely", "just", "also", "indeed", "truly")
POLITE = ("please", "thanks", "kindly")


def _pair(rng: random.Random) -> dict[str, Any]:
    thing = rng.choice(THINGS)
    answer = f"the {thing} is {COLOR_OF[thing]}"
    chosen_words = [*answer.split(), *rng.sample(FILLERS, rng.randint(0, 3))]
    chosen_words.insert(rng.choice((0, len(chosen_words))), rng.choice(POLITE))
    # One to four fillers against the polite reply's zero to three plus its polite word: the
    # longer reply wins about half the time, so length alone predicts nothing.
    rejected_words = [*answer.split(), *rng.sample(FILLERS, rng.randint(1, 4))]
    return {
        "prompt": f"what color is the {thing} ?",
        "chosen": " ".join(chosen_words),
        "rejected": " ".join(rejected_words),
        "margin": rng.choice((0.5, 1.0)),
        "agreement": rng.choice((0.6, 0.8, 1.0)),
        "votes": 3,
    }


def _demo(rng: random.Random) -> dict[str, Any]:
    thing = rng.choice(THINGS)
    return {
        "messages": [
            {"role": "user", "content": f"what color is the {thing} ?"},
            {"role": "assistant", "content": f"thanks for asking . the {thing} is {COLOR_OF[thing]} ."},
        ]
    }


def write_synthetic_snapshot(folder: Path, *, pairs: int = 96, demos: int = 64, seed: int = 0) -> Path:
    """A snapshot export in the shape curation/snapshots.py writes, with rules a tiny model can learn.

    The preferred reply always carries a polite word, and answers follow a fixed thing-to-colour
    table. Each comes with a validation split half its size.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    files = {
        "preferences_train.jsonl": [_pair(rng) for _ in range(pairs)],
        "preferences_validation.jsonl": [_pair(rng) for _ in range(max(pairs // 2, 1))],
        "sft_train.jsonl": [_demo(rng) for _ in range(demos)],
        "sft_validation.jsonl": [_demo(rng) for _ in range(max(demos // 2, 1))],
    }
    for name, rows in files.items():
        with (folder / name).open("w", encoding="utf-8") as handle:
            for number, row in enumerate(rows):
                row["id"] = f"{name.split('_')[0]}-{number}"
                if name.startswith("sft"):
                    row["origin"] = "human"
                handle.write(json.dumps(row) + "\n")
    return folder


def synthetic_corpus(folder: Path) -> list[str]:
    """Every text in a snapshot export, to train a tiny tokenizer on."""
    texts: list[str] = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if "messages" in row:
                texts.extend(message["content"] for message in row["messages"])
            else:
                texts.extend((row["prompt"], row["chosen"], row["rejected"]))
    return texts
