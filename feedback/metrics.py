"""Agreement and trust arithmetic. Pure functions: no Django, so tests and benchmarks
can call them directly."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass


def krippendorff_alpha_nominal(units: Iterable[Sequence[Hashable]]) -> float | None:
    """Krippendorff's alpha for nominal data.

    `units` holds, per item, the values the coders gave it. Items with fewer than two values
    carry no information about agreement and are ignored. Returns None when nothing can be
    said (no pairable values, or a single category used throughout).
    """
    coincidences: dict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for values in units:
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_c - 1) if c == k else n_c * n_k
                if pairs:
                    coincidences[(c, k)] += pairs / (m - 1)
    if not coincidences:
        return None
    marginals: dict[Hashable, float] = defaultdict(float)
    for (c, _k), value in coincidences.items():
        marginals[c] += value
    n = sum(marginals.values())
    if n <= 1:
        return None
    observed = sum(v for (c, k), v in coincidences.items() if c != k)
    expected = sum(marginals[c] * marginals[k] for c in marginals for k in marginals if c != k) / (n - 1)
    if expected == 0:
        return None
    return 1.0 - observed / expected


@dataclass(frozen=True)
class Vote:
    choice: str
    weight: float
    strength: str = ""


@dataclass(frozen=True)
class Aggregate:
    winner: str | None
    agreement: float  # the winner's share of the total weight
    weights: dict[str, float]
    votes: int
    margin: float  # mean strength of the winning votes: clear 1.0, slight 0.5


_STRENGTH = {"clear": 1.0, "slight": 0.5, "": 0.5}


def weighted_vote(votes: Sequence[Vote]) -> Aggregate:
    weights: dict[str, float] = defaultdict(float)
    for vote in votes:
        weights[vote.choice] += max(vote.weight, 0.0)
    total = sum(weights.values())
    if not votes or total <= 0:
        return Aggregate(None, 0.0, dict(weights), len(votes), 0.0)
    ranked = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))
    # A dead heat between the top two choices is no decision.
    if len(ranked) > 1 and abs(ranked[0][1] - ranked[1][1]) < 1e-9:
        return Aggregate(None, ranked[0][1] / total, dict(weights), len(votes), 0.0)
    winner = ranked[0][0]
    strengths = [_STRENGTH.get(v.strength, 0.5) for v in votes if v.choice == winner]
    return Aggregate(winner, ranked[0][1] / total, dict(weights), len(votes), sum(strengths) / len(strengths))


# Trust is a smoothed accuracy: a newcomer starts at the prior and evidence moves them.
TRUST_PRIOR = 0.8
TRUST_PRIOR_WEIGHT = 4.0
GOLD_WEIGHT = 2.0  # a gold answer is known truth, a majority is only probable truth
LOW_TRUST = 0.5
MIN_EVIDENCE_FOR_FLAG = 5


def trust_score(*, gold_correct: int, gold_total: int, agreed: int, agreement_total: int) -> float:
    hits = GOLD_WEIGHT * gold_correct + agreed
    seen = GOLD_WEIGHT * gold_total + agreement_total
    return (hits + TRUST_PRIOR * TRUST_PRIOR_WEIGHT) / (seen + TRUST_PRIOR_WEIGHT)


def is_low_trust(trust: float, evidence: int) -> bool:
    return evidence >= MIN_EVIDENCE_FOR_FLAG and trust < LOW_TRUST


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
