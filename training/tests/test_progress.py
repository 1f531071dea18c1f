import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from training.progress import ProgressCallback
from training.reward import train_reward


def test_it_reports_every_step_with_loss_and_eta(tmp_path, make_reward_config):
    reports: list[dict] = []
    result = train_reward(
        make_reward_config(tmp_path, max_steps=10, logging_steps=3), on_progress=reports.append
    )

    assert [r["step"] for r in reports] == list(range(11))
    assert {r["total"] for r in reports} == {10}
    assert reports[0]["loss"] is None and reports[0]["eta_seconds"] is None
    # Losses appear from the first log (step 3) on, and the last report carries the final loss.
    assert all(r["loss"] is not None and r["loss"] > 0 for r in reports[4:])
    assert reports[-1]["loss"] == pytest.approx(result.final_loss)
    assert all(r["eta_seconds"] >= 0 for r in reports[1:])
    assert reports[-1]["eta_seconds"] == 0
    elapsed = [r["elapsed_seconds"] for r in reports]
    assert elapsed == sorted(elapsed)
    assert reports[-1]["epoch"] == pytest.approx(10 / 16)  # 128 pairs / 8 = 16 steps per epoch


def _state(step: int, total: int = 100) -> TrainerState:
    state = TrainerState()
    state.global_step, state.max_steps = step, total
    return state


def test_it_throttles_reports_but_always_sends_the_first_and_last(tmp_path):
    reports: list[dict] = []
    callback = ProgressCallback(reports.append, min_interval_seconds=3600)
    args, control = TrainingArguments(output_dir=str(tmp_path), report_to=[]), TrainerControl()
    callback.on_train_begin(args, _state(0), control)
    for step in range(1, 100):
        callback.on_step_end(args, _state(step), control)
    callback.on_step_end(args, _state(100), control)
    assert control.should_log  # the last step is always logged, so its loss is known
    callback.on_log(args, _state(100), control, logs={"loss": 0.25})
    assert [(r["step"], r["loss"]) for r in reports] == [(0, None), (100, 0.25)]


def test_it_stays_quiet_on_other_processes(tmp_path):
    reports: list[dict] = []
    callback = ProgressCallback(reports.append)
    state = _state(0)
    state.is_world_process_zero = False
    callback.on_train_begin(
        TrainingArguments(output_dir=str(tmp_path), report_to=[]), state, TrainerControl()
    )
    assert reports == []
