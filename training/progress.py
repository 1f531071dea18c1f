"""Training progress as plain dicts, for a database row or a terminal progress bar."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

ProgressFn = Callable[[dict[str, Any]], None]


class ProgressCallback(TrainerCallback):
    """Calls `on_progress({"step", "total", "loss", "eta_seconds", "epoch", "elapsed_seconds"})`.

    It reports when training starts and after every optimizer step, at most once per
    `min_interval_seconds` (the start and the last step always), and only on the main process.
    `loss` is the latest logged training loss (every `logging_steps`), None before the first log.
    The ETA extrapolates the pace of the steps this process ran, so that a resumed run does not
    count the steps it skipped as instant.
    """

    def __init__(self, on_progress: ProgressFn, *, min_interval_seconds: float = 0.0) -> None:
        self.on_progress = on_progress
        self.min_interval_seconds = min_interval_seconds
        self._started = 0.0
        self._first_step = 0
        self._last_report = -math.inf
        self._loss: float | None = None

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._started = time.monotonic()
        # On a resume the trainer restores global_step before this event.
        self._first_step = state.global_step
        self._report(state, force=True)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if state.global_step >= state.max_steps:
            # Log the last step even when max_steps is not a multiple of logging_steps (the final loss
            # is part of TrainResult and of the reproducibility checks); on_log then reports it.
            control.should_log = True
            return
        self._report(state, force=False)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if logs and "loss" in logs:
            self._loss = float(logs["loss"])
        if state.global_step >= state.max_steps and logs and "loss" in logs:
            self._report(state, force=True)

    def _report(self, state: TrainerState, *, force: bool) -> None:
        if not state.is_world_process_zero:
            return
        now = time.monotonic()
        if not force and now - self._last_report < self.min_interval_seconds:
            return
        self._last_report = now
        elapsed = now - self._started
        done = state.global_step - self._first_step
        remaining = max(state.max_steps - state.global_step, 0)
        eta = elapsed / done * remaining if done > 0 else None
        self.on_progress(
            {
                "step": state.global_step,
                "total": state.max_steps,
                "loss": self._loss,
                "eta_seconds": eta,
                "epoch": state.epoch,
                "elapsed_seconds": elapsed,
            }
        )
