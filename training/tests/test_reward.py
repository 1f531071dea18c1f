import json
import math

import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from training.evaluate import evaluate_reward
from training.reward import default_reward_base, train_reward
from training.runtime import sha256_file


def test_it_trains_a_reward_model_that_learns_the_rule_and_not_length(trained_reward, snapshot_dir):
    after = evaluate_reward(trained_reward.output_dir, snapshot_dir / "preferences_validation.jsonl")
    assert after["n"] == 64
    # The data is built so that length predicts nothing; the polite word predicts everything.
    assert 0.35 <= after["length_baseline_accuracy"] <= 0.65
    assert after["accuracy"] >= 0.9
    assert after["accuracy"] > after["length_baseline_accuracy"] + 0.25
    assert after["mean_margin"] > 0
    assert after["high_agreement_n"] > 0 and after["high_agreement_accuracy"] >= 0.9
    assert 0.0 <= after["ece"] <= 1.0
    assert trained_reward.steps == 48  # 128 pairs / 8 per batch * 3 epochs
    assert not math.isnan(trained_reward.final_loss)
    assert trained_reward.examples_per_second > 0 and trained_reward.wall_seconds > 0


def test_it_writes_a_self_contained_artifact(trained_reward, snapshot_dir, tiny_encoder):
    folder = trained_reward.output_dir
    assert not (folder / "checkpoints").exists()
    metadata = json.loads((folder / "flywheel.json").read_text())
    assert metadata["kind"] == "reward"
    assert metadata["base"] == str(tiny_encoder)
    assert metadata["seed"] == 0
    assert metadata["data_files"] == {
        "preferences_train.jsonl": sha256_file(snapshot_dir / "preferences_train.jsonl")
    }
    assert metadata["train"]["steps"] == 48
    # Loads from the folder alone, with no network and no knowledge of the base.
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
    assert model.config.num_labels == 1
    assert tokenizer.eos_token == "[SEP]" and model.config.pad_token_id == tokenizer.pad_token_id


def test_it_puts_the_margin_into_the_loss(tmp_path, make_reward_config, snapshot_dir):
    # Untrained rewards are all near zero, so the first step's loss is about
    # -logsigmoid(0 - margin) = softplus(margin): 1.313 for a margin of 1, 0.693 without.
    data = tmp_path / "data"
    data.mkdir()
    rows = [json.loads(line) for line in (snapshot_dir / "preferences_train.jsonl").read_text().splitlines()]
    with (data / "preferences_train.jsonl").open("w") as handle:
        for row in rows[:16]:
            handle.write(json.dumps({**row, "margin": 1.0}) + "\n")
    result = train_reward(
        make_reward_config(tmp_path / "out", data_dir=data, lr=1e-9, max_steps=1, logging_steps=1)
    )
    assert result.final_loss == pytest.approx(math.log1p(math.e), abs=0.02)


def test_it_weighs_each_pair_by_its_training_weight(tmp_path, make_reward_config, snapshot_dir):
    # Every pair twice, once the right way round and once flipped. Unweighted, the data says
    # nothing (chance); with the flipped copies weighing almost nothing, the rule is learned.
    data = tmp_path / "data"
    data.mkdir()
    rows = [json.loads(line) for line in (snapshot_dir / "preferences_train.jsonl").read_text().splitlines()]
    with (data / "preferences_train.jsonl").open("w") as handle:
        for row in rows:
            handle.write(json.dumps({**row, "weight": 1.9}) + "\n")
            flipped = {**row, "chosen": row["rejected"], "rejected": row["chosen"], "weight": 0.01}
            handle.write(json.dumps(flipped) + "\n")
    result = train_reward(make_reward_config(tmp_path / "out", data_dir=data))
    after = evaluate_reward(result.output_dir, snapshot_dir / "preferences_validation.jsonl")
    assert after["accuracy"] >= 0.85


def test_it_refuses_a_bad_weight(tmp_path, make_reward_config, snapshot_dir):
    row = json.loads((snapshot_dir / "preferences_train.jsonl").read_text().splitlines()[0])
    (tmp_path / "preferences_train.jsonl").write_text(json.dumps({**row, "weight": -1}) + "\n")
    with pytest.raises(ValueError, match="weight must be a finite number"):
        train_reward(make_reward_config(tmp_path / "out", data_dir=tmp_path))


def test_it_refuses_an_empty_export(tmp_path, make_reward_config):
    (tmp_path / "preferences_train.jsonl").write_text("")
    with pytest.raises(ValueError, match="no preference pairs"):
        train_reward(make_reward_config(tmp_path / "out", data_dir=tmp_path))


def test_it_finds_the_packaged_minilm_offline():
    base = default_reward_base()
    assert (base / "model.safetensors").exists() and (base / "tokenizer.json").exists()
