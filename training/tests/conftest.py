"""Tiny models and a synthetic snapshot export, built once per test session.

Everything runs on CPU, on one thread unless OMP_NUM_THREADS says otherwise (configure_threads):
on a shared two-core box more threads only contend.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from training.config import RewardTrainConfig, SFTTrainConfig, TrainResult
from training.reward import train_reward
from training.runtime import configure_threads
from training.sft import train_sft
from training.tiny import (
    build_tiny_causal_lm,
    build_tiny_encoder,
    synthetic_corpus,
    write_synthetic_snapshot,
)

configure_threads()

# Learning rates are high because the models are tiny and the runs a few dozen steps long.
REWARD_DEFAULTS: dict[str, Any] = {
    "epochs": 3,
    "batch_size": 8,
    "lr": 1e-3,
    "logging_steps": 4,
    "save_steps": 1000,
}
SFT_DEFAULTS: dict[str, Any] = {
    "epochs": 4,
    "batch_size": 8,
    "lr": 3e-3,
    "logging_steps": 4,
    "save_steps": 1000,
}


@pytest.fixture(scope="session")
def snapshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_snapshot(tmp_path_factory.mktemp("snapshot"), pairs=128, demos=64, seed=0)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory, snapshot_dir: Path) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("encoder"), synthetic_corpus(snapshot_dir))


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory, snapshot_dir: Path) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("lm"), synthetic_corpus(snapshot_dir))


@pytest.fixture(scope="session")
def make_reward_config(snapshot_dir: Path, tiny_encoder: Path) -> Callable[..., RewardTrainConfig]:
    def make(out: Path, **overrides: Any) -> RewardTrainConfig:
        options = {"data_dir": snapshot_dir, "base": tiny_encoder, "out": out, **REWARD_DEFAULTS, **overrides}
        return RewardTrainConfig(**options)

    return make


@pytest.fixture(scope="session")
def make_sft_config(snapshot_dir: Path, tiny_lm: Path) -> Callable[..., SFTTrainConfig]:
    def make(out: Path, **overrides: Any) -> SFTTrainConfig:
        options = {"data_dir": snapshot_dir, "base": tiny_lm, "out": out, **SFT_DEFAULTS, **overrides}
        return SFTTrainConfig(**options)

    return make


@pytest.fixture(scope="session")
def trained_reward(
    tmp_path_factory: pytest.TempPathFactory, make_reward_config: Callable[..., RewardTrainConfig]
) -> TrainResult:
    return train_reward(make_reward_config(tmp_path_factory.mktemp("reward")))


@pytest.fixture(scope="session")
def trained_policy(
    tmp_path_factory: pytest.TempPathFactory, make_sft_config: Callable[..., SFTTrainConfig]
) -> TrainResult:
    return train_sft(make_sft_config(tmp_path_factory.mktemp("policy")))
