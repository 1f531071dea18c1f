"""Run configurations and results. Plain dataclasses: importing this module does not import torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

Kind = Literal["reward", "policy"]

# LoRA pays off once full fine-tuning stops fitting comfortably; below this size (the test models,
# all-MiniLM-L6-v2 at 22M) every weight is trained.
LORA_AUTO_MIN_PARAMS = 50_000_000


@dataclass
class TrainConfig:
    """What every run needs. `out` receives the finished model; checkpoints go to `out/checkpoints`."""

    default_lr_full: ClassVar[float] = 2e-5
    default_lr_lora: ClassVar[float] = 2e-4

    data_dir: Path
    base: Path
    out: Path
    seed: int = 0
    epochs: float = 1.0
    batch_size: int = 8
    lr: float | None = None  # None: the kind's default, see the subclasses
    max_steps: int | None = None  # None: run `epochs` epochs
    lora: bool | None = None  # None: on for bases over LORA_AUTO_MIN_PARAMS parameters
    lora_r: int = 16
    lora_alpha: int = 32
    bf16: bool = False  # honoured only where CUDA is available
    resume: bool = True  # continue from the newest checkpoint in `out/checkpoints`, if any
    save_steps: int = 50
    save_total_limit: int = 2
    keep_checkpoints: bool = False  # checkpoints are deleted once the model is saved
    logging_steps: int = 10
    max_length: int = 512
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False
    warmup_ratio: float = 0.0

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.base = Path(self.base)
        self.out = Path(self.out)
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("max_steps must be at least 1, or None")
        if self.save_steps < 1 or self.logging_steps < 1:
            raise ValueError("save_steps and logging_steps must be at least 1")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError("warmup_ratio must be in [0, 1)")

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"

    def learning_rate(self, *, lora: bool) -> float:
        if self.lr is not None:
            return self.lr
        return self.default_lr_lora if lora else self.default_lr_full

    def as_json(self) -> dict[str, Any]:
        return {key: str(value) if isinstance(value, Path) else value for key, value in asdict(self).items()}


@dataclass
class RewardTrainConfig(TrainConfig):
    """A reward model trained on `preferences_train.jsonl` of a snapshot export."""

    default_lr_full: ClassVar[float] = 3e-5
    default_lr_lora: ClassVar[float] = 1e-4

    center_rewards_coefficient: float | None = None


@dataclass
class SFTTrainConfig(TrainConfig):
    """A policy trained on `sft_train.jsonl` of a snapshot export."""

    default_lr_full: ClassVar[float] = 2e-5
    default_lr_lora: ClassVar[float] = 2e-4

    max_length: int = 1024


@dataclass
class TrainResult:
    """What a finished run reports. `output_dir` is the folder to register and load."""

    kind: Kind
    output_dir: Path
    final_loss: float  # the training loss logged at the last step
    mean_loss: float  # averaged over the steps this process ran (after a resume: since the checkpoint)
    steps: int
    resumed_from_step: int
    examples_per_second: float
    wall_seconds: float
    lora: bool
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_dir"] = str(self.output_dir)
        return data


# The options a project's pipeline settings may pass to a training run (`reward_config` /
# `policy_config`), with the types each accepts. Paths and resume behaviour belong to the run.
TRAIN_OPTIONS: dict[str, tuple[type, ...]] = {
    "seed": (int,),
    "epochs": (int, float),
    "batch_size": (int,),
    "lr": (int, float, type(None)),
    "max_steps": (int, type(None)),
    "lora": (bool, type(None)),
    "bf16": (bool,),
    "max_length": (int,),
    "save_steps": (int,),
}


def train_options_check(kind: str, options: Any) -> dict[str, Any]:
    """The options, if a run of `kind` would accept every one; else ValueError saying which is
    wrong. Unknown names are refused, not dropped: a misspelt "learning_rate" would otherwise
    train at the default without a word."""
    if not isinstance(options, dict):
        raise ValueError("must be an object of training options")
    unknown = sorted(set(options) - TRAIN_OPTIONS.keys())
    if unknown:
        raise ValueError(f"unknown option {', '.join(unknown)}; use {', '.join(TRAIN_OPTIONS)}")
    for name, value in options.items():
        allowed = TRAIN_OPTIONS[name]
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            raise ValueError(f"{name} has the wrong type ({type(value).__name__})")
    if options.get("epochs", 1.0) <= 0:
        raise ValueError("epochs must be above 0")
    if options.get("max_length", 512) < 8:
        raise ValueError("max_length must be at least 8")
    lr = options.get("lr")
    if lr is not None and not 0 < lr < 1:
        raise ValueError("lr must be between 0 and 1")
    config_class = RewardTrainConfig if kind == "reward" else SFTTrainConfig
    config_class(data_dir=Path("."), base=Path("."), out=Path("."), **options)  # its own checks
    return dict(options)
