"""The part of a run that does not depend on its kind: arguments, resume, saving, the result."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import PreTrainedModel, Trainer, TrainerCallback
from transformers.trainer_callback import PrinterCallback

from training.config import Kind, TrainConfig, TrainResult
from training.progress import ProgressCallback, ProgressFn
from training.runtime import (
    checkpoint_step,
    latest_checkpoint,
    remove_checkpoints,
    use_bf16,
    versions,
    write_metadata,
)

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")


def common_arguments(config: TrainConfig, *, lora: bool) -> dict[str, Any]:
    """Keyword arguments shared by RewardConfig and SFTConfig (both TrainingArguments)."""
    return {
        "output_dir": str(config.checkpoint_dir),
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps or -1,
        "learning_rate": config.learning_rate(lora=lora),
        "lr_scheduler_type": "linear",
        "warmup_steps": config.warmup_ratio,  # below 1 it is read as a fraction of the steps
        "seed": config.seed,
        "data_seed": config.seed,
        # TRL defaults to bf16 and to activation checkpointing; both are explicit here, since the
        # first is slow or unsupported on CPU and the second only pays for itself on large bases.
        "bf16": use_bf16(config.bf16),
        "fp16": False,
        "activation_checkpointing": config.gradient_checkpointing,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        "logging_strategy": "steps",
        "logging_steps": config.logging_steps,
        "eval_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,  # progress goes through ProgressCallback, so a worker's log stays readable
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": torch.cuda.is_available(),
    }


def callbacks_for(
    on_progress: ProgressFn | None, extra: Sequence[TrainerCallback], *, min_interval_seconds: float = 0.0
) -> list[TrainerCallback]:
    callbacks: list[TrainerCallback] = list(extra)
    if on_progress is not None:
        callbacks.append(ProgressCallback(on_progress, min_interval_seconds=min_interval_seconds))
    return callbacks


def train_and_save(
    trainer: Trainer,
    config: TrainConfig,
    *,
    kind: Kind,
    lora: bool,
    load_base: Callable[[], PreTrainedModel],
    before_save: Callable[[], None] | None = None,
    metadata: dict[str, Any],
    started: float,
) -> TrainResult:
    """Train (resuming from the newest checkpoint when asked), save a self-contained folder, report.

    A LoRA run is merged into its base before it is saved, so that every artifact loads the same
    way; the merge reloads the base from disk because under FSDP this process holds only a shard.
    """
    trainer.remove_callback(PrinterCallback)
    checkpoint = latest_checkpoint(config.checkpoint_dir) if config.resume else None
    resumed_from = checkpoint_step(checkpoint)
    train_started = time.monotonic()
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    train_seconds = time.monotonic() - train_started

    if before_save is not None:
        before_save()
    trainer.save_model(str(config.out))
    trainer.accelerator.wait_for_everyone()

    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    final_loss = float(losses[-1]) if losses else float("nan")
    steps = trainer.state.global_step
    examples = (
        (steps - resumed_from)
        * config.batch_size
        * config.gradient_accumulation_steps
        * trainer.accelerator.num_processes
    )
    result = TrainResult(
        kind=kind,
        output_dir=config.out,
        final_loss=final_loss,
        mean_loss=float(output.training_loss),
        steps=steps,
        resumed_from_step=resumed_from,
        examples_per_second=examples / train_seconds if train_seconds > 0 else 0.0,
        wall_seconds=0.0,
        lora=lora,
    )
    if trainer.is_world_process_zero():
        if lora:
            _merge_adapter(config.out, load_base())
        result.metadata = {
            "kind": kind,
            "base": str(config.base),
            "seed": config.seed,
            "lora": lora,
            "config": config.as_json(),
            "train": {
                "final_loss": final_loss,
                "mean_loss": result.mean_loss,
                "steps": steps,
                "resumed_from_step": resumed_from,
                "examples_per_second": result.examples_per_second,
            },
            "versions": versions(),
            **metadata,
        }
        write_metadata(config.out, result.metadata)
        if not config.keep_checkpoints:
            remove_checkpoints(config.checkpoint_dir)
    trainer.accelerator.wait_for_everyone()
    result.wall_seconds = time.monotonic() - started
    return result


def _merge_adapter(folder: Path, base: PreTrainedModel) -> None:
    merged = PeftModel.from_pretrained(base, str(folder)).merge_and_unload()
    for name in ADAPTER_FILES:
        (folder / name).unlink(missing_ok=True)
    merged.save_pretrained(str(folder))
