"""Evaluation: pure metric functions, and the two evaluations the promotion gate reads.

The metric functions take plain lists and import neither torch nor numpy, so the web process and
the tests can call them. `evaluate_reward` and `evaluate_policy` load models (lazily).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def sigmoid(x: float) -> float:
    # Split by sign so that neither branch overflows for large |x|.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _outcome(a: float, b: float) -> float:
    """1 if a beats b, 0 if it loses, 0.5 for a tie."""
    return 1.0 if a > b else 0.0 if a < b else 0.5


def _check_paired(a: Sequence[Any], b: Sequence[Any]) -> None:
    if len(a) != len(b):
        raise ValueError(f"paired sequences differ in length: {len(a)} and {len(b)}")


def pairwise_accuracy(chosen_scores: Sequence[float], rejected_scores: Sequence[float]) -> float:
    """Share of pairs where the chosen response scores higher; a tie counts half. NaN if empty."""
    _check_paired(chosen_scores, rejected_scores)
    if not chosen_scores:
        return math.nan
    return sum(_outcome(c, r) for c, r in zip(chosen_scores, rejected_scores, strict=True)) / len(
        chosen_scores
    )


def mean_margin(chosen_scores: Sequence[float], rejected_scores: Sequence[float]) -> float:
    """Mean of r_chosen - r_rejected. NaN if empty."""
    _check_paired(chosen_scores, rejected_scores)
    if not chosen_scores:
        return math.nan
    return sum(c - r for c, r in zip(chosen_scores, rejected_scores, strict=True)) / len(chosen_scores)


def expected_calibration_error(
    probabilities: Sequence[float], outcomes: Sequence[float], *, n_bins: int = 10
) -> float:
    """Binary ECE: sum over equal-width confidence bins of (bin share) * |accuracy - confidence|.

    `probabilities[i]` is the predicted probability that outcome i is 1. The model predicts the
    likelier side, with confidence max(p, 1 - p) in [0.5, 1], and the bins split that range.
    """
    _check_paired(probabilities, outcomes)
    if not probabilities:
        return math.nan
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    totals = [[0, 0.0, 0.0] for _ in range(n_bins)]  # count, sum of confidence, sum of correct
    for p, y in zip(probabilities, outcomes, strict=True):
        confidence = max(p, 1.0 - p)
        correct = 1.0 if (p >= 0.5) == (y >= 0.5) else 0.0
        index = min(int((confidence - 0.5) * 2 * n_bins), n_bins - 1)
        totals[index][0] += 1
        totals[index][1] += confidence
        totals[index][2] += correct
    n = len(probabilities)
    return sum(count / n * abs(hits / count - conf / count) for count, conf, hits in totals if count)


def pairwise_ece(
    chosen_scores: Sequence[float], rejected_scores: Sequence[float], *, n_bins: int = 10
) -> float:
    """ECE of the Bradley-Terry probability sigmoid(r_chosen - r_rejected) that the chosen one wins.

    The human verdict is the outcome (always "chosen won"), so a model that is right 80% of the
    time should say about 0.8, not 0.99.
    """
    _check_paired(chosen_scores, rejected_scores)
    probabilities = [sigmoid(c - r) for c, r in zip(chosen_scores, rejected_scores, strict=True)]
    return expected_calibration_error(probabilities, [1.0] * len(probabilities), n_bins=n_bins)


def length_baseline_accuracy(chosen: Sequence[str], rejected: Sequence[str]) -> float:
    """Accuracy of "the longer response wins" (in characters; ties count half).

    A reward model that does not beat this has likely learned length, the commonest shortcut.
    """
    _check_paired(chosen, rejected)
    return pairwise_accuracy([float(len(c)) for c in chosen], [float(len(r)) for r in rejected])


def high_agreement_accuracy(
    chosen_scores: Sequence[float],
    rejected_scores: Sequence[float],
    agreements: Sequence[float],
    *,
    threshold: float = 0.8,
) -> tuple[float, int]:
    """Pairwise accuracy on the pairs annotators agreed on (agreement >= threshold), and their count.

    Low-agreement pairs are noisy labels; this is the accuracy a good model can be held to.
    """
    _check_paired(chosen_scores, rejected_scores)
    _check_paired(chosen_scores, agreements)
    kept = [
        (c, r) for c, r, a in zip(chosen_scores, rejected_scores, agreements, strict=True) if a >= threshold
    ]
    return pairwise_accuracy([c for c, _ in kept], [r for _, r in kept]), len(kept)


def discordant_pairs(new: Sequence[float], old: Sequence[float]) -> tuple[int, int]:
    """From two models' per-pair outcomes on the same pairs (1 right, 0 wrong, 0.5 a tie): how
    many pairs the new one got more right than the old one, and how many the other way round."""
    _check_paired(new, old)
    pairs = list(zip(new, old, strict=True))
    return sum(n > o for n, o in pairs), sum(o > n for n, o in pairs)


def sign_test_p(worse: int, better: int) -> float:
    """One-sided exact sign test: the chance of `worse` or more losses among `worse + better`
    discordant pairs if both models were equally good. 1.0 with no discordant pair."""
    n = worse + better
    return sum(math.comb(n, k) for k in range(worse, n + 1)) / 2**n


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def win_rate(outcomes: Sequence[float]) -> float:
    """Mean of per-item outcomes (1 win, 0 loss, 0.5 tie, or a per-prompt average). NaN if empty."""
    return sum(outcomes) / len(outcomes) if outcomes else math.nan


def bootstrap_ci(
    outcomes: Sequence[float], *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of `outcomes`.

    Pass one outcome per independent unit (per prompt, averaging that prompt's samples), since
    samples for the same prompt are correlated and would make the interval too narrow.
    """
    if not outcomes:
        return (math.nan, math.nan)
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    rng = random.Random(seed)
    n = len(outcomes)
    means = sorted(sum(rng.choices(outcomes, k=n)) / n for _ in range(resamples))
    tail = (1 - confidence) / 2
    low = means[math.floor(tail * (resamples - 1))]
    high = means[math.ceil((1 - tail) * (resamples - 1))]
    return (low, high)


def reward_metrics(
    rows: Sequence[dict[str, Any]],
    chosen_scores: Sequence[float],
    rejected_scores: Sequence[float],
    *,
    high_agreement: float = 0.8,
    outcomes: bool = False,
) -> dict[str, Any]:
    """The reward gate's numbers from preference rows and the model's scores for them; with
    `outcomes`, each pair's outcome too (1 right, 0 wrong, 0.5 a tie), for a paired comparison."""
    high_accuracy, high_n = high_agreement_accuracy(
        chosen_scores,
        rejected_scores,
        [float(row.get("agreement", 1.0)) for row in rows],
        threshold=high_agreement,
    )
    metrics: dict[str, Any] = {
        "n": len(rows),
        "accuracy": pairwise_accuracy(chosen_scores, rejected_scores),
        "mean_margin": mean_margin(chosen_scores, rejected_scores),
        "ece": pairwise_ece(chosen_scores, rejected_scores),
        "length_baseline_accuracy": length_baseline_accuracy(
            [str(row["chosen"]) for row in rows], [str(row["rejected"]) for row in rows]
        ),
        "high_agreement_accuracy": high_accuracy,
        "high_agreement_n": high_n,
        "high_agreement_threshold": high_agreement,
    }
    gold = [bool(row.get("gold")) for row in rows]
    if any(gold):
        # Judged on the validation split and on gold pairs together; each part's own accuracy too.
        for name, wanted in (("gold", True), ("validation", False)):
            picked = [i for i, g in enumerate(gold) if g == wanted]
            metrics[f"{name}_n"] = len(picked)
            metrics[f"{name}_accuracy"] = pairwise_accuracy(  # NaN for a part with no pairs
                [chosen_scores[i] for i in picked], [rejected_scores[i] for i in picked]
            )
    if outcomes:
        metrics["outcomes"] = [_outcome(c, r) for c, r in zip(chosen_scores, rejected_scores, strict=True)]
    return metrics


def _has_rows(path: Path) -> bool:
    if not path.exists():
        return False
    with path.open(encoding="utf-8") as handle:
        return any(line.strip() for line in handle)


def held_out_files(data_dir: Path, kind: str, *, gold: bool = False) -> tuple[list[Path], str]:
    """The pairs to judge on: the validation split, and for a reward model with `gold` the
    snapshot's gold pairs beside it. Without either (a tiny project) the gate cannot be fair,
    and the metrics say so: `evaluated_on` is "train" and the gate refuses a rematch."""
    name = "preferences" if kind == "reward" else "sft"
    parts = {"validation": data_dir / f"{name}_validation.jsonl"}
    if gold and kind == "reward":
        parts["gold"] = data_dir / "preferences_gold.jsonl"
    found = {split: path for split, path in parts.items() if _has_rows(path)}
    if found:
        return list(found.values()), "+".join(found)
    return [data_dir / f"{name}_train.jsonl"], "train"


def evaluate_reward(
    model_dir: Path,
    preference_jsonl: Path | Sequence[Path],
    high_agreement: float = 0.8,
    *,
    batch_size: int = 16,
    outcomes: bool = False,
) -> dict[str, Any]:
    """Score every pair of a preference export (or of several, taken together) with the reward
    model in `model_dir`.

    Returns n, accuracy, mean_margin, ece, length_baseline_accuracy, high_agreement_accuracy
    (NaN when no pair reaches the threshold) and high_agreement_n; with gold rows among them,
    gold_n, gold_accuracy, validation_n and validation_accuracy as well.
    """
    from training.runtime import read_jsonl
    from training.serving import RewardModel

    paths = [preference_jsonl] if isinstance(preference_jsonl, str | Path) else list(preference_jsonl)
    rows = [row for path in paths for row in read_jsonl(Path(path))]
    model = RewardModel.load(Path(model_dir))
    # One call for both sides, so that score_pairs batches similar lengths across all of them.
    scores = model.score_pairs(
        [(row["prompt"], row[side]) for side in ("chosen", "rejected") for row in rows], batch_size=batch_size
    )
    chosen, rejected = scores[: len(rows)], scores[len(rows) :]
    return reward_metrics(rows, chosen, rejected, high_agreement=high_agreement, outcomes=outcomes)


def evaluate_policy(
    new_dir: Path,
    deployed_dir: Path | None,
    reward_dir: Path,
    prompts: Sequence[str],
    n_samples: int = 1,
    seed: int = 0,
    *,
    sft_validation: Path | None = None,
    temperature: float = 0.7,
    max_new_tokens: int = 128,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Compare a new policy with the deployed one on `prompts`, judged by the reward model.

    Each policy samples `n_samples` replies per prompt (same seed for both); reply i of the new
    policy is paired with reply i of the deployed one. Returns:

    - win_rate: share of pairs where the reward model scores the new reply higher (ties half),
      and win_rate_ci, a 95% bootstrap interval over prompts; None without a deployed model;
    - mean_reward_new / mean_reward_deployed;
    - validation_loss_new / validation_loss_deployed when `sft_validation` is given;
    - pairs: one dict per (prompt, sample) with both replies and their scores, for head-to-head
      human comparison tasks.
    """
    from training.serving import PolicyModel, RewardModel
    from training.sft import validation_loss

    if n_samples < 1:
        raise ValueError("n_samples must be at least 1")
    prompts = list(prompts)
    new = PolicyModel.load(Path(new_dir))
    new_replies = new.generate(
        prompts,
        n=n_samples,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        seed=seed,
        batch_size=batch_size,
    )
    result: dict[str, Any] = {"n_prompts": len(prompts), "n_samples": n_samples}
    if sft_validation is not None:
        result["validation_loss_new"] = validation_loss(
            Path(new_dir), Path(sft_validation), model=new.model, tokenizer=new.tokenizer
        )
    del new

    deployed_replies: list[list[str]] | None = None
    if deployed_dir is not None:
        deployed = PolicyModel.load(Path(deployed_dir))
        deployed_replies = deployed.generate(
            prompts,
            n=n_samples,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            seed=seed,
            batch_size=batch_size,
        )
        if sft_validation is not None:
            result["validation_loss_deployed"] = validation_loss(
                Path(deployed_dir), Path(sft_validation), model=deployed.model, tokenizer=deployed.tokenizer
            )
        del deployed

    judge = RewardModel.load(Path(reward_dir))
    new_scores = [judge.score(prompt, replies) for prompt, replies in zip(prompts, new_replies, strict=True)]
    deployed_scores = (
        [judge.score(prompt, replies) for prompt, replies in zip(prompts, deployed_replies, strict=True)]
        if deployed_replies is not None
        else None
    )

    pairs = []
    per_prompt: list[float] = []
    for index, prompt in enumerate(prompts):
        outcomes = []
        for sample in range(n_samples):
            pair: dict[str, Any] = {
                "prompt": prompt,
                "sample": sample,
                "new": new_replies[index][sample],
                "new_score": new_scores[index][sample],
                "deployed": None,
                "deployed_score": None,
            }
            if deployed_replies is not None and deployed_scores is not None:
                pair["deployed"] = deployed_replies[index][sample]
                pair["deployed_score"] = deployed_scores[index][sample]
                outcomes.append(_outcome(pair["new_score"], pair["deployed_score"]))
            pairs.append(pair)
        if outcomes:
            per_prompt.append(win_rate(outcomes))

    flat_new = [score for scores in new_scores for score in scores]
    result["mean_reward_new"] = _mean(flat_new)
    result["pairs"] = pairs
    if deployed_scores is None:
        result.update({"win_rate": None, "win_rate_ci": None, "mean_reward_deployed": None})
    else:
        result["win_rate"] = win_rate(per_prompt)
        result["win_rate_ci"] = list(bootstrap_ci(per_prompt, seed=seed))
        result["mean_reward_deployed"] = _mean([score for scores in deployed_scores for score in scores])
    return result
