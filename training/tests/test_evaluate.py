import math

import pytest

from training.evaluate import evaluate_policy

PROMPTS = ["what color is the sky ?", "what color is the rose ?", "what color is the milk ?"]


@pytest.fixture(scope="module")
def head_to_head(trained_policy, trained_reward, tiny_lm, snapshot_dir):
    def run(seed=0, deployed=tiny_lm):
        return evaluate_policy(
            trained_policy.output_dir,
            deployed,
            trained_reward.output_dir,
            PROMPTS,
            n_samples=2,
            seed=seed,
            sft_validation=snapshot_dir / "sft_validation.jsonl",
            max_new_tokens=12,
        )

    return run


def test_it_pits_the_new_policy_against_the_deployed_one(head_to_head):
    result = head_to_head()
    assert result["n_prompts"] == 3 and result["n_samples"] == 2
    low, high = result["win_rate_ci"]
    assert 0.0 <= low <= result["win_rate"] <= high <= 1.0
    assert result["validation_loss_new"] < result["validation_loss_deployed"]
    assert len(result["pairs"]) == 6
    wins = [
        1.0 if p["new_score"] > p["deployed_score"] else 0.0 if p["new_score"] < p["deployed_score"] else 0.5
        for p in result["pairs"]
    ]
    assert result["win_rate"] == pytest.approx(sum(wins) / len(wins))
    for pair in result["pairs"]:
        assert pair["prompt"] in PROMPTS
        assert isinstance(pair["new"], str) and isinstance(pair["deployed"], str)
    assert result["mean_reward_new"] == pytest.approx(sum(p["new_score"] for p in result["pairs"]) / 6)


def test_it_is_reproducible_from_its_seed(head_to_head):
    assert head_to_head(seed=4) == head_to_head(seed=4)


def test_it_evaluates_a_first_policy_with_nothing_deployed(head_to_head):
    result = head_to_head(deployed=None)
    assert result["win_rate"] is None and result["win_rate_ci"] is None
    assert result["mean_reward_deployed"] is None and "validation_loss_deployed" not in result
    assert all(pair["deployed"] is None for pair in result["pairs"])
    assert not math.isnan(result["mean_reward_new"])
