import json
import shutil
from pathlib import Path

import pytest

from training.__main__ import build_parser, main, read_prompts

REPO = Path(__file__).resolve().parents[2]


def test_it_trains_and_evaluates_from_the_command_line(tmp_path, snapshot_dir, tiny_encoder, capsys):
    out = tmp_path / "rm"
    common = ["--data-dir", str(snapshot_dir), "--base", str(tiny_encoder), "--out", str(out)]
    assert (
        main(["reward", *common, "--max-steps", "5", "--batch-size", "4", "--lr", "1e-3", "--no-lora"]) == 0
    )
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["steps"] == 5 and result["output_dir"] == str(out) and result["lora"] is False
    assert "reward: 100%" in captured.err  # the progress bar

    assert main(["eval-reward", "--model", str(out), "--data", str(snapshot_dir)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n"] == 64 and 0.0 <= metrics["accuracy"] <= 1.0
    assert metrics["evaluated_on"] == "validation"

    # --with-gold reads what the gate reads: the split and the snapshot's gold pairs. Here the
    # gold pairs are the first 10 validation pairs, flipped, so the model is wrong where it was right.
    with pytest.raises(SystemExit, match="no gold pairs"):
        main(["eval-reward", "--model", str(out), "--data", str(snapshot_dir), "--with-gold"])
    folder = tmp_path / "with-gold"
    shutil.copytree(snapshot_dir, folder)
    rows = [json.loads(line) for line in (folder / "preferences_validation.jsonl").read_text().splitlines()]
    gold = [{**r, "chosen": r["rejected"], "rejected": r["chosen"], "gold": True} for r in rows[:10]]
    (folder / "preferences_gold.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gold))
    assert main(["eval-reward", "--model", str(out), "--data", str(folder), "--with-gold"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["evaluated_on"] == "validation+gold" and (both["n"], both["gold_n"]) == (74, 10)
    assert both["validation_accuracy"] == pytest.approx(metrics["accuracy"])


def test_it_parses_the_training_options():
    args = build_parser().parse_args(
        ["sft", "--data-dir", "d", "--out", "o", "--lora", "--bf16", "--no-resume", "--max-steps", "3"]
    )
    assert (args.lora, args.bf16, args.resume, args.max_steps, args.base) == (True, True, False, 3, None)
    defaults = build_parser().parse_args(["reward", "--data-dir", "d", "--out", "o"])
    assert (defaults.lora, defaults.resume, defaults.seed, defaults.epochs) == (None, True, 0, 1.0)


def test_it_reads_prompts_from_exports_and_text(tmp_path, snapshot_dir):
    from_pairs = read_prompts(snapshot_dir / "preferences_validation.jsonl")
    from_demos = read_prompts(snapshot_dir / "sft_validation.jsonl")
    assert from_pairs and len(from_pairs) == len(set(from_pairs))
    assert all(prompt.startswith("what color is the") for prompt in from_pairs + from_demos)
    text = tmp_path / "prompts.txt"
    text.write_text("first\n\nsecond\nfirst\n")
    assert read_prompts(text) == ["first", "second"]


@pytest.mark.parametrize("name, kind", [("ddp", "MULTI_GPU"), ("fsdp", "FSDP")])
def test_it_ships_accelerate_configs_that_launch_the_cli(name, kind):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    path = REPO / "deploy" / "accelerate" / f"{name}.yaml"
    assert load_config_from_file(str(path)).distributed_type == kind
    args = launch_command_parser().parse_args(["--config_file", str(path), "-m", "training", "reward"])
    _validate_launch_command(args)
    assert args.module and args.training_script == "training"
    env = prepare_multi_gpu_env(args)  # what `accelerate launch` hands each process
    if kind == "FSDP":
        assert env["FSDP_VERSION"] == "2" and env["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT"
