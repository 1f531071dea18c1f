"""Which pairs of candidate responses are worth a human's time. Pure: no Django."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from itertools import combinations


@dataclass(frozen=True)
class Candidate:
    id: int
    score: float | None  # the deployed reward model's score, if one is deployed
    producer: str  # "policy-v3", "human", "imported", ...


@dataclass(frozen=True)
class Pair:
    a: int
    b: int
    priority: float
    p_a: float | None  # the reward model's P(a preferred)


def preference_probability(score_a: float, score_b: float) -> float:
    """Bradley-Terry: P(a beats b) = sigmoid(r_a - r_b)."""
    return 1.0 / (1.0 + math.exp(-(score_a - score_b)))


def uncertainty(p: float) -> float:
    """1 at p = 0.5 (a coin toss), 0 at certainty."""
    return 1.0 - abs(2.0 * p - 1.0)


def select_pairs(
    candidates: list[Candidate],
    *,
    policy: str,
    max_pairs: int,
    existing: set[frozenset[int]],
    newest_producer: str | None = None,
    rng: random.Random | None = None,
) -> list[Pair]:
    """Pick up to `max_pairs` new pairs among one prompt's candidates.

    - random: uniformly among unseen pairs;
    - uncertainty: the pairs the reward model is least sure about first (needs scores; falls
      back to random without them);
    - new_vs_old: pairs with one side from the newest producer and the other from anyone else.
    """
    rng = rng or random.Random(0)
    options = [(x, y) for x, y in combinations(candidates, 2) if frozenset((x.id, y.id)) not in existing]
    if policy == "new_vs_old" and newest_producer:
        options = [
            (x, y) for x, y in options if (x.producer == newest_producer) != (y.producer == newest_producer)
        ]
    scored = all(c.score is not None for c in candidates)
    pairs = []
    for x, y in options:
        p = preference_probability(x.score, y.score) if scored else None  # type: ignore[arg-type]
        priority = uncertainty(p) if p is not None and policy == "uncertainty" else 0.0
        # Which side is "A" is randomised so the suggestion is not always for the same producer.
        if rng.random() < 0.5:
            x, y = y, x
            p = None if p is None else 1.0 - p
        pairs.append(Pair(a=x.id, b=y.id, priority=priority, p_a=p))
    if policy == "uncertainty" and scored:
        pairs.sort(key=lambda pair: -pair.priority)
    else:
        rng.shuffle(pairs)
    return pairs[:max_pairs]
