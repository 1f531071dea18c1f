"""Agreement and trust arithmetic. Pure functions: no Django, so tests and benchmarks
can call them directly."""

from __future__ import annotations

import math
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


# Position bias. Every lease draws which response is drawn on the left, so whatever a person
# reads, their A/B choices land on the left side half the time, give or take a coin's noise. A
# share far from a half over many choices means some choices follow the side, not the text.
POSITION_MIN_SIDED = 20  # A/B choices shown with a side before the test may say anything
POSITION_ALPHA = 0.001  # two-sided: trust refreshes often, and a false alarm costs a person


def binomial_p_two_sided(k: int, n: int) -> float:
    """Exact two-sided binomial test against a fair coin: P(|X - n/2| >= |k - n/2|), X ~ B(n, 1/2)."""
    if n <= 0:
        return 1.0
    far = max(k, n - k)
    if 2 * far <= n + 1:
        return 1.0
    # Log space, from the observed count outwards: terms shrink, so stop once they stop counting.
    log_n = math.lgamma(n + 1) + n * math.log(0.5)
    tail = 0.0
    for i in range(far, n + 1):
        term = math.exp(log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1))
        tail += term
        if term <= tail * 1e-16:
            break
    return min(1.0, 2.0 * tail)


def side_driven_share(*, left: int, sided: int) -> float:
    """The estimated share of someone's A/B choices that followed the side, not the content.

    Model: with probability q a choice goes to the favourite side whatever the pair; otherwise it
    follows the content, which is on the left half the time because sides are drawn per lease.
    The left share s is then (1 + q) / 2 (or (1 - q) / 2 for a right-hander), so q = |2s - 1|.
    It is 0 unless the share differs from a half by an exact binomial test at POSITION_ALPHA over
    at least POSITION_MIN_SIDED choices, so a mild real preference on a small sample costs nothing.
    """
    if sided < POSITION_MIN_SIDED or binomial_p_two_sided(left, sided) >= POSITION_ALPHA:
        return 0.0
    return abs(2.0 * left / sided - 1.0)


def trust_score(
    *, gold_correct: int, gold_total: int, agreed: int, agreement_total: int, side_driven: float = 0.0
) -> float:
    """Smoothed accuracy, times the share of choices that followed the content.

    A side-driven choice carries nothing about the pair, yet agrees with the majority half the
    time, so accuracy alone leaves an always-left clicker near 0.5 (the flag line) and lets their
    votes weigh half as much as a careful person's. Trust is a vote's weight, so it keeps only the
    informative share: an always-left clicker goes to 0.
    """
    hits = GOLD_WEIGHT * gold_correct + agreed
    seen = GOLD_WEIGHT * gold_total + agreement_total
    accuracy = (hits + TRUST_PRIOR * TRUST_PRIOR_WEIGHT) / (seen + TRUST_PRIOR_WEIGHT)
    return accuracy * (1.0 - min(max(side_driven, 0.0), 1.0))


def is_low_trust(trust: float, evidence: int) -> bool:
    return evidence >= MIN_EVIDENCE_FOR_FLAG and trust < LOW_TRUST


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
