"""Instruction model: supervised fine-tuning with TRL's SFTTrainer, loss on the assistant's tokens only.

TRL 1.16 offers two ways to leave the prompt out of the loss, and this module picks per base:

- `assistant_only_loss=True` on the conversational data, when the chat template marks assistant
  turns with `{% generation %}` (the tiny test model's does), when `templates.TRAINING_TEMPLATES`
  holds a patched twin of it (SmolLM2's), or when TRL can patch it itself (Qwen, Llama, ...);
- otherwise `completion_only_loss=True` on the same rows split into prompt (every message but
  the last) and completion (the last assistant reply): earlier assistant turns then go untrained.

The trained model is saved with its base's own template, so it renders prompts at serving time
exactly as the base did.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainerCallback,
    set_seed,
)
from trl import SFTConfig, SFTTrainer
from trl.chat_template_utils import get_training_chat_template, has_generation_markers

from training.config import LORA_AUTO_MIN_PARAMS, SFTTrainConfig, TrainResult
from training.loop import callbacks_for, common_arguments, train_and_save
from training.progress import ProgressFn
from training.runtime import (
    configure_threads,
    count_parameters,
    data_hashes,
    quiet_progress_bars,
    read_jsonl,
)
from training.templates import TRAINING_TEMPLATES

TRAIN_FILE = "sft_train.jsonl"
VALIDATION_FILE = "sft_validation.jsonl"
LossMode = Literal["assistant_only", "completion_only"]
_UNBOUNDED = 1_000_000
Messages = list[dict[str, str]]


def training_template(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """The chat template with generation markers to train with, or None if none is known."""
    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default")
    if not template:
        raise ValueError("The SFT base has no chat template; give it one before training on conversations")
    if has_generation_markers(template):
        return str(template)
    if template in TRAINING_TEMPLATES:
        return TRAINING_TEMPLATES[template]
    try:
        patched = get_training_chat_template(tokenizer)
    except ValueError:  # TRL raises for templates it has no patch for
        return None
    return patched or str(template)


def loss_mode(tokenizer: PreTrainedTokenizerBase) -> LossMode:
    return "assistant_only" if training_template(tokenizer) is not None else "completion_only"


def sft_max_length(tokenizer: PreTrainedTokenizerBase, requested: int) -> int:
    limit = tokenizer.model_max_length
    return min(requested, limit) if limit and limit < _UNBOUNDED else requested


def _as_prompt_completion(messages: Messages) -> dict[str, Messages]:
    if not messages or messages[-1].get("role") != "assistant":
        raise ValueError("Every SFT example must end with an assistant message")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def sft_dataset(rows: Sequence[dict[str, Any]], mode: LossMode) -> Dataset:
    if mode == "assistant_only":
        return Dataset.from_list([{"messages": row["messages"]} for row in rows])
    return Dataset.from_list([_as_prompt_completion(row["messages"]) for row in rows])


def _chat_tokens(
    tokenizer: PreTrainedTokenizerBase, messages: Messages, **options: Any
) -> dict[str, list[int]]:
    # apply_chat_template's declared return type covers every mode (text, ids, dicts, batches);
    # with tokenize=True and return_dict=True on one conversation it is a dict of id lists.
    encoded: Any = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **options)
    return {key: list(encoded[key]) for key in ("input_ids", "assistant_masks") if key in encoded}


def encode_conversation(
    tokenizer: PreTrainedTokenizerBase, messages: Messages, *, template: str | None, max_length: int
) -> tuple[list[int], list[int]]:
    """Input ids and labels (-100 where no loss is taken), as SFTTrainer builds them.

    `template` is training_template(tokenizer): with one, labels cover assistant turns; without,
    they cover the last message only. Sequences are cut to `max_length` from the right, as TRL's
    default truncation (keep_start) does.
    """
    if template is not None:
        encoded = _chat_tokens(tokenizer, messages, chat_template=template, return_assistant_tokens_mask=True)
        ids = encoded["input_ids"]
        labels = [
            token if keep else -100 for token, keep in zip(ids, encoded["assistant_masks"], strict=True)
        ]
    else:
        split = _as_prompt_completion(messages)
        prompt_ids = _chat_tokens(tokenizer, split["prompt"], add_generation_prompt=True)["input_ids"]
        ids = _chat_tokens(tokenizer, messages)["input_ids"]
        prefix = 0
        while prefix < min(len(prompt_ids), len(ids)) and prompt_ids[prefix] == ids[prefix]:
            prefix += 1
        labels = [-100] * prefix + ids[prefix:]
    return ids[:max_length], labels[:max_length]


def load_policy_model(folder: Path) -> PreTrainedModel:
    model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(
        str(folder), local_files_only=True, dtype=torch.float32
    )
    return model


def train_sft(
    config: SFTTrainConfig,
    *,
    on_progress: ProgressFn | None = None,
    progress_interval_seconds: float = 0.0,
    callbacks: Sequence[TrainerCallback] = (),
) -> TrainResult:
    """Fine-tune a policy on `config.data_dir/sft_train.jsonl` into `config.out`."""
    started = time.monotonic()
    configure_threads()
    quiet_progress_bars()
    rows = read_jsonl(config.data_dir / TRAIN_FILE)
    if not rows:
        raise ValueError(f"{config.data_dir / TRAIN_FILE} has no demonstrations to train on")

    tokenizer = AutoTokenizer.from_pretrained(str(config.base), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    original_template = tokenizer.chat_template
    template = training_template(tokenizer)
    mode: LossMode = "assistant_only" if template is not None else "completion_only"
    if template is not None:
        # With markers in place TRL uses the template as is instead of looking for its own patch.
        tokenizer.chat_template = template
    max_length = sft_max_length(tokenizer, config.max_length)

    # LoRA's matrices are initialised when the trainer wraps the model, after it seeds; this seed
    # covers anything random while loading.
    set_seed(config.seed)
    model = load_policy_model(config.base)
    lora = config.lora if config.lora is not None else count_parameters(model) > LORA_AUTO_MIN_PARAMS
    peft_config = (
        LoraConfig(
            task_type="CAUSAL_LM",
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=0.05,
            target_modules="all-linear",
        )
        if lora
        else None
    )
    args = SFTConfig(
        **common_arguments(config, lora=lora),
        max_length=max_length,
        packing=False,
        assistant_only_loss=mode == "assistant_only",
        completion_only_loss=mode == "completion_only",
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=sft_dataset(rows, mode),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks_for(on_progress, callbacks, min_interval_seconds=progress_interval_seconds),
    )

    def restore_template() -> None:
        tokenizer.chat_template = original_template

    return train_and_save(
        trainer,
        config,
        kind="policy",
        lora=lora,
        load_base=lambda: load_policy_model(config.base),
        before_save=restore_template,
        metadata={
            "max_length": max_length,
            "loss_mode": mode,
            "data_files": data_hashes(config.data_dir, (TRAIN_FILE,)),
            "examples": len(rows),
        },
        started=started,
    )


@torch.no_grad()
def validation_loss(
    model_dir: Path,
    sft_jsonl: Path,
    *,
    batch_size: int = 8,
    max_length: int | None = None,
    model: PreTrainedModel | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> float:
    """Mean cross-entropy per supervised token (the tokens SFT trains on) over a JSONL of conversations.

    Token-weighted, so it does not depend on `batch_size`. NaN when the file has no examples.
    """
    configure_threads()
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    if model is None:
        model = load_policy_model(model_dir)
    model.eval()
    device = next(model.parameters()).device
    template = training_template(tokenizer)
    limit = sft_max_length(tokenizer, max_length or _UNBOUNDED - 1)
    examples = [
        encode_conversation(tokenizer, row["messages"], template=template, max_length=limit)
        for row in read_jsonl(sft_jsonl)
    ]
    total, count = 0.0, 0
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (ids, row_labels) in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, : len(ids)] = torch.tensor(row_labels)
            attention[row, : len(ids)] = 1
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits.float()
        targets = labels[:, 1:].to(device)
        summed = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.size(-1)),
            targets.reshape(-1),
            ignore_index=-100,
            reduction="sum",
        )
        total += float(summed)
        count += int((targets != -100).sum())
    return total / count if count else math.nan
