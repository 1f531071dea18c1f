"""Which pairs of candidate responses are worth a human's time. Pure: no Django."""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


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
    candidates: Sequence[Candidate],
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


# Under uncertainty, the share of a round's tasks that may be drawn at random instead. Exploration
# is the usual guard against uncertainty sampling's blind spot (pairs the model is confidently
# wrong about are never asked), but in the simulation a share of 0.3 or 0.5 did not beat none
# (docs/flywheel.md, Results), so it is off until a project shows otherwise.
EXPLORE_SHARE = 0.0


def _disjoint_first(pairs: list[Pair]) -> list[Pair]:
    """Pairs by priority, but those that share no response with a pair already taken first: two
    pairs around the same response mostly ask the same question twice."""
    first: list[Pair] = []
    later: list[Pair] = []
    used: set[int] = set()
    for pair in pairs:
        if pair.a in used or pair.b in used:
            later.append(pair)
        else:
            first.append(pair)
            used.update((pair.a, pair.b))
    return first + later


def select_tasks(
    pools: Mapping[K, Sequence[Candidate]],
    *,
    policy: str,
    limit: int,
    existing: set[frozenset[int]],
    per_prompt: int = 2,
    newest_producer: str | None = None,
    explore: float = EXPLORE_SHARE,
    rng: random.Random,
) -> list[tuple[K, Pair]]:
    """A round's comparisons across prompts: up to `limit` (prompt, pair), highest priority first.

    - random and new_vs_old: `per_prompt` pairs per prompt by `select_pairs`, then `limit` of
      them at random;
    - uncertainty, once every candidate is scored: a spread over prompts, then by uncertainty.
      Each prompt's most uncertain pair comes before any prompt's second one, and a prompt's
      second pair shares no response with its first when it can. `explore` of the tasks are
      unseen pairs drawn at random (still carrying their uncertainty as priority and suggestion).
    """
    scored = all(c.score is not None for candidates in pools.values() for c in candidates)
    if policy != "uncertainty" or not scored:
        proposals = [
            (key, pair)
            for key, candidates in pools.items()
            if len(candidates) >= 2
            for pair in select_pairs(
                candidates,
                policy=policy,
                max_pairs=per_prompt,
                existing=existing,
                newest_producer=newest_producer,
                rng=rng,
            )
        ]
        # Shuffle first: the sort is stable, and under the random policy every priority is 0, so
        # without it the earliest prompts would always take the whole task budget.
        rng.shuffle(proposals)
        proposals.sort(key=lambda item: -item[1].priority)
        return proposals[:limit]

    ranked: dict[K, list[Pair]] = {}
    for key, candidates in pools.items():
        if len(candidates) < 2:
            continue
        pairs = select_pairs(
            candidates,
            policy="uncertainty",
            max_pairs=math.comb(len(candidates), 2),
            existing=existing,
            rng=rng,
        )
        if pairs:
            ranked[key] = _disjoint_first(pairs)
    explored = min(round(limit * explore), limit)
    chosen: list[tuple[K, Pair]] = []
    taken: dict[K, int] = {key: 0 for key in ranked}
    # Exploration: a prompt at random, then one of its unseen pairs at random.
    open_keys = list(ranked)
    while len(chosen) < explored and open_keys:
        key = rng.choice(open_keys)
        pair = ranked[key].pop(rng.randrange(len(ranked[key])))
        chosen.append((key, pair))
        taken[key] += 1
        if taken[key] >= per_prompt or not ranked[key]:
            open_keys.remove(key)
    # Exploitation: everyone's first choice by uncertainty, then everyone's second, ...
    exploit = [
        (index, -pair.priority, rng.random(), key, pair)
        for key, pairs in ranked.items()
        for index, pair in enumerate(pairs[: max(per_prompt - taken[key], 0)])
    ]
    exploit.sort(key=lambda row: row[:3])
    chosen += [(key, pair) for *_, key, pair in exploit[: limit - len(chosen)]]
    chosen.sort(key=lambda item: -item[1].priority)
    return chosen
