import pytest
from safetensors.torch import load_file
from transformers import TrainerCallback

from training.reward import train_reward
from training.sft import train_sft


class CrashAfterSaving(TrainerCallback):
    """Dies like a killed worker would, right after the checkpoint at `step` is on disk."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise RuntimeError("simulated crash")


class FirstStep(TrainerCallback):
    def __init__(self) -> None:
        self.step: int | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.step = state.global_step


@pytest.mark.parametrize("kind", ["reward", "sft"])
def test_it_resumes_after_a_crash_where_it_left_off(kind, tmp_path, make_reward_config, make_sft_config):
    train, make = (train_reward, make_reward_config) if kind == "reward" else (train_sft, make_sft_config)
    options = {"max_steps": 12, "save_steps": 4, "logging_steps": 4}

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(make(tmp_path / "crashed", **options), callbacks=[CrashAfterSaving(8)])
    assert (tmp_path / "crashed" / "checkpoints" / "checkpoint-8").is_dir()
    assert not (tmp_path / "crashed" / "model.safetensors").exists()

    first_step = FirstStep()
    progress: list[dict] = []
    resumed = train(
        make(tmp_path / "crashed", **options), callbacks=[first_step], on_progress=progress.append
    )
    uninterrupted = train(make(tmp_path / "whole", **options))

    assert first_step.step == 8 and resumed.resumed_from_step == 8
    assert progress[0]["step"] == 8 and progress[-1]["step"] == 12
    assert resumed.steps == uninterrupted.steps == 12
    # Optimizer, scheduler, RNG and data order all come back from the checkpoint.
    assert resumed.final_loss == pytest.approx(uninterrupted.final_loss, abs=1e-5)
    weights, reference = (load_file(r.output_dir / "model.safetensors") for r in (resumed, uninterrupted))
    assert max(float((weights[k] - reference[k]).abs().max()) for k in reference) < 1e-5


def test_it_starts_over_when_told_not_to_resume(tmp_path, make_reward_config):
    options = {"max_steps": 8, "save_steps": 4, "keep_checkpoints": True}
    train_reward(make_reward_config(tmp_path / "out", **options))
    assert (tmp_path / "out" / "checkpoints" / "checkpoint-8").is_dir()

    first_step = FirstStep()
    result = train_reward(
        make_reward_config(tmp_path / "out", resume=False, **options), callbacks=[first_step]
    )
    assert first_step.step == 0 and result.resumed_from_step == 0 and result.steps == 8
