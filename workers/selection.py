"""Which pairs of candidate responses are worth a human's time. Pure: no Django."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import combinations
from typing import TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Candidate:
    id: int
    score: float | None  # the deployed reward model's score, if one is deployed
    producer: str  # "policy-v3", "human", "imported", ...
    # What the reward model's score head reads for this response (its last hidden representation);
    # the score is a linear function of it. The information policy weighs a pair's doubt by how
    # much its answer could teach (see `select_tasks`).
    features: tuple[float, ...] | None = None
    # The committee policy's members' scores for this response: the deployed reward model's first,
    # then other recent versions of it (see `committee_doubt`). Each member's scores are on its
    # own scale; only differences within one member are compared.
    committee: tuple[float, ...] | None = None
    # The reply's sentence embedding, unit length (curation's all-MiniLM-L6-v2, not the reward
    # model): the contrast policy weighs a pair's doubt by how far apart its replies' contents are.
    embedding: tuple[float, ...] | None = None


# A pair's doubt from outside the reward model: (a, b) -> priority in [0, 1], the higher the more
# worth asking. The simulation's oracle uses it (it knows the hidden truth); no product policy does.
Doubt = Callable[[Candidate, Candidate], float]


@dataclass(frozen=True)
class Pair:
    a: int
    b: int
    priority: float
    p_a: float | None  # the reward model's P(a preferred)
    # How much the pair's judgment counts in reward training: 1, except under the importance
    # policy, where it is 1/π (π the chance the pair had of being drawn), scaled to a mean of 1.
    weight: float = 1.0


def preference_probability(score_a: float, score_b: float) -> float:
    """Bradley-Terry: P(a beats b) = sigmoid(r_a - r_b), written with tanh so that a gap of
    hundreds (an untrained head) gives 0 or 1 instead of an OverflowError."""
    return 0.5 * (1.0 + math.tanh((score_a - score_b) / 2.0))


def uncertainty(p: float) -> float:
    """1 at p = 0.5 (a coin toss), 0 at certainty."""
    return 1.0 - abs(2.0 * p - 1.0)


def contrast(x: Candidate, y: Candidate) -> float:
    """How different two replies' contents are, in [0, 1]: one minus the cosine of their sentence
    embeddings (unit vectors), floored at 0 and capped at 1. Two arrangements of the same answer
    are close; the same sentence with a different fact in it is farther apart."""
    assert x.embedding is not None and y.embedding is not None
    cosine = float(np.dot(np.asarray(x.embedding), np.asarray(y.embedding)))
    return min(max(1.0 - cosine, 0.0), 1.0)


def _has_embeddings(candidates: Sequence[Candidate]) -> bool:
    return all(c.embedding is not None for c in candidates)


def committee_doubt(probabilities: Sequence[float]) -> float:
    """Query by committee: how much a pair is in doubt across reward-model versions, in [0, 1].

    `probabilities` is each member's P(a beats b), sigmoid(r_a - r_b) on that member's own scale.
    The doubt is the mean of two parts: the consensus's uncertainty, 1 - |2p̄ - 1| with p̄ the
    members' mean, and their disagreement, max p - min p. Members that flip (0.9 against 0.1)
    give 0.9; members that all say 0.5 give 0.5 (a close pair, which people find hard too); members
    that agree at 0.9 give 0.1. Disagreement between versions is the part of the doubt that can
    point at a confident mistake of the deployed model, which its own margin never does. With one
    member it is half that member's uncertainty: the same order as the uncertainty policy.
    """
    if not probabilities:
        raise ValueError("a committee needs at least one member")
    mean = sum(probabilities) / len(probabilities)
    return 0.5 * (uncertainty(mean) + max(probabilities) - min(probabilities))


def _committee_probabilities(x: Candidate, y: Candidate) -> list[float]:
    assert x.committee is not None and y.committee is not None
    return [preference_probability(a, b) for a, b in zip(x.committee, y.committee, strict=True)]


def _has_committee(candidates: Sequence[Candidate]) -> bool:
    sizes = {len(c.committee) if c.committee is not None else 0 for c in candidates}
    return len(sizes) == 1 and sizes != {0}


# The policies that rank a prompt's pairs by the reward model's doubt (each its own measure of it).
DOUBTING = ("uncertainty", "committee", "contrast")


def select_pairs(
    candidates: Sequence[Candidate],
    *,
    policy: str,
    max_pairs: int,
    existing: set[frozenset[int]],
    newest_producer: str | None = None,
    rng: random.Random | None = None,
    doubt: Doubt | None = None,
) -> list[Pair]:
    """Pick up to `max_pairs` new pairs among one prompt's candidates.

    - random: uniformly among unseen pairs;
    - uncertainty: the pairs the reward model is least sure about first (needs scores; falls
      back to random without them);
    - committee: like uncertainty, but by `committee_doubt` over the members' scores
      (`Candidate.committee`); uncertainty without them;
    - contrast: like uncertainty, each pair's doubt times its replies' `contrast` (needs the
      candidates' embeddings; uncertainty without them);
    - new_vs_old: pairs with one side from the newest producer and the other from anyone else.

    `doubt`, if given, replaces the uncertainty and committee policies' measure of doubt.
    """
    rng = rng or random.Random(0)
    options = [(x, y) for x, y in combinations(candidates, 2) if frozenset((x.id, y.id)) not in existing]
    if policy == "new_vs_old" and newest_producer:
        options = [
            (x, y) for x, y in options if (x.producer == newest_producer) != (y.producer == newest_producer)
        ]
    scored = all(c.score is not None for c in candidates)
    committee = policy == "committee" and _has_committee(candidates)
    contrasted = policy == "contrast" and _has_embeddings(candidates)
    pairs = []
    for x, y in options:
        p = preference_probability(x.score, y.score) if scored else None  # type: ignore[arg-type]
        if doubt is not None and scored and policy in ("uncertainty", "committee"):
            priority = doubt(x, y)
        elif committee:
            priority = committee_doubt(_committee_probabilities(x, y))
        elif p is not None and contrasted:
            priority = uncertainty(p) * contrast(x, y)
        elif p is not None and policy in DOUBTING:
            priority = uncertainty(p)
        else:
            priority = 0.0
        # Which side is "A" is randomised so the suggestion is not always for the same producer.
        if rng.random() < 0.5:
            x, y = y, x
            p = None if p is None else 1.0 - p
        pairs.append(Pair(a=x.id, b=y.id, priority=priority, p_a=p))
    if policy in DOUBTING and scored:
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


# The prior precision of the score head's weights in the information criterion: how much a
# feature direction counts as known before any pair along it is judged. Features of the reward
# models here are O(1) per dimension (a tanh pooler, a normed hidden state), so 1 is a weak prior
# that a dozen judged pairs along a direction outweigh.
PRIOR_PRECISION = 1.0


def select_tasks(
    pools: Mapping[K, Sequence[Candidate]],
    *,
    policy: str,
    limit: int,
    existing: set[frozenset[int]],
    per_prompt: int = 2,
    newest_producer: str | None = None,
    explore: float = EXPLORE_SHARE,
    validation: Collection[K] = (),
    rng: random.Random,
    doubt: Doubt | None = None,
) -> list[tuple[K, Pair]]:
    """A round's comparisons across prompts: up to `limit` (prompt, pair), highest priority first.

    Prompts in `validation` (those whose data the snapshot holds out) get their share of the
    tasks, in proportion to their number, drawn at random whatever the policy: the gate judges
    models on that split, and it can only tell which model is better on the pairs a project
    meets if the split is not shaped by what one model found hard. The rest, by the policy:

    - random and new_vs_old: `per_prompt` pairs per prompt by `select_pairs`, then the rest of
      the tasks at random among them;
    - uncertainty, once every candidate is scored: a spread over prompts by uncertainty, each
      prompt's most uncertain pair before any prompt's second, a prompt's second pair sharing no
      response with its first when it can. `explore` of these tasks are unseen pairs drawn at
      random;
    - committee, once every candidate is scored: the same spread as uncertainty, with each pair's
      doubt from a committee of reward-model versions (`committee_doubt`) when the candidates
      carry the members' scores;
    - contrast, once every candidate is scored: the same spread as uncertainty, by doubt times
      how far apart the replies' contents are (`contrast`) when the candidates carry embeddings;
    - information, once every candidate is scored and has features: by expected information
      about the score head (see `_informative`), with the same spread and exploration; without
      features it is uncertainty.

    - importance, once every candidate is scored: unseen pairs drawn at random with probability
      growing with their uncertainty, each weighted in training by the inverse of its chance
      (`_importance_sample`); random without scores.

    `doubt` replaces the uncertainty, committee and importance policies' measure of a pair's
    doubt (the simulation's oracle); the spread over prompts is the same.
    """
    held = {key: candidates for key, candidates in pools.items() if key in validation}
    train = {key: candidates for key, candidates in pools.items() if key not in validation}
    askable = sum(len(c) >= 2 for c in pools.values())
    share = round(limit * sum(len(c) >= 2 for c in held.values()) / askable) if askable else 0
    held_out = _random_spread(held, limit=share, per_prompt=per_prompt, existing=existing, rng=rng)
    chosen = _by_policy(
        train,
        policy=policy,
        limit=limit - len(held_out),
        existing=existing,
        per_prompt=per_prompt,
        newest_producer=newest_producer,
        explore=explore,
        rng=rng,
        doubt=doubt,
    )
    if not (held_out and chosen):
        return sorted(chosen + held_out, key=lambda item: -item[1].priority)
    # Served in the same queue, by priority: each held-out task takes the priority of the policy's
    # task at its place in an even interleaving (and goes right after it), so the split fills as
    # fast as the rest instead of waiting behind every pair the policy ranked higher.
    chosen.sort(key=lambda item: -item[1].priority)
    step = len(chosen) / len(held_out)
    places = [min(int((i + 0.5) * step), len(chosen) - 1) for i in range(len(held_out))]
    interleaved = [(-pair.priority, float(j), key, pair) for j, (key, pair) in enumerate(chosen)]
    interleaved += [
        (-chosen[j][1].priority, j + 0.5, key, replace(pair, priority=chosen[j][1].priority))
        for j, (key, pair) in zip(places, held_out, strict=True)
    ]
    interleaved.sort(key=lambda row: row[:2])
    return [(key, pair) for *_, key, pair in interleaved]


def _random_spread(
    pools: Mapping[K, Sequence[Candidate]],
    *,
    limit: int,
    per_prompt: int,
    existing: set[frozenset[int]],
    rng: random.Random,
) -> list[tuple[K, Pair]]:
    """`limit` unseen pairs at random, every prompt's first before any prompt's second."""
    levels: list[list[tuple[float, K, Pair]]] = [[] for _ in range(per_prompt)]
    for key, candidates in pools.items():
        if len(candidates) < 2:
            continue
        pairs = select_pairs(candidates, policy="random", max_pairs=per_prompt, existing=existing, rng=rng)
        # Keep each pair's uncertainty as its suggestion; its priority is set by the caller.
        for index, pair in enumerate(pairs):
            levels[index].append((rng.random(), key, replace(pair, priority=_doubt(pair))))
    ordered = [(key, pair) for level in levels for _, key, pair in sorted(level, key=lambda row: row[0])]
    return ordered[:limit]


def _doubt(pair: Pair) -> float:
    return uncertainty(pair.p_a) if pair.p_a is not None else 0.0


def _by_policy(
    pools: Mapping[K, Sequence[Candidate]],
    *,
    policy: str,
    limit: int,
    existing: set[frozenset[int]],
    per_prompt: int,
    newest_producer: str | None,
    explore: float,
    rng: random.Random,
    doubt: Doubt | None = None,
) -> list[tuple[K, Pair]]:
    if limit <= 0:
        return []
    scored = all(c.score is not None for candidates in pools.values() for c in candidates)
    if policy == "importance" and scored:
        return _importance_sample(pools, limit=limit, existing=existing, rng=rng, doubt=doubt)
    if policy not in (*DOUBTING, "information") or not scored:
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
            policy=policy if policy in DOUBTING else "uncertainty",
            max_pairs=math.comb(len(candidates), 2),
            existing=existing,
            rng=rng,
            doubt=doubt,
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
    featured = all(c.features is not None for candidates in pools.values() for c in candidates)
    if policy == "information" and featured:
        chosen += _informative(
            pools, ranked, taken=taken, limit=limit - len(chosen), per_prompt=per_prompt, existing=existing
        )
        chosen.sort(key=lambda item: -item[1].priority)
        return chosen
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


# The importance policy's floor on a pair's sampling weight, next to its doubt in [0, 1]: a pair
# the model is sure of is drawn about a sixth as often as a typical one, never not at all, so the
# model's confident mistakes can still be asked about (and then count 1/π-fold).
IMPORTANCE_FLOOR = 0.1


def inclusion_probabilities(weights: Sequence[float], k: int) -> list[float]:
    """Probabilities π_i ∝ w_i that sum to k (at most the number of items), none above 1: items
    whose share would pass 1 are taken for sure and the rest share what is left. All-zero
    weights share it evenly."""
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError("sampling weights must be finite and non-negative")
    n = len(weights)
    k = max(0, min(k, n))
    probabilities = [0.0] * n
    if k == 0:
        return probabilities
    certain: set[int] = set()
    while True:
        rest = [i for i in range(n) if i not in certain]
        left = k - len(certain)
        total = sum(weights[i] for i in rest)
        if not rest or left <= 0:
            break
        if total <= 0:
            for i in rest:
                probabilities[i] = left / len(rest)
            break
        over = [i for i in rest if weights[i] * left / total >= 1.0]
        if not over:
            for i in rest:
                probabilities[i] = weights[i] * left / total
            break
        certain.update(over)
    for i in certain:
        probabilities[i] = 1.0
    return probabilities


def systematic_sample(probabilities: Sequence[float], rng: random.Random) -> list[int]:
    """Draw round(Σπ) items, item i with probability exactly π_i (each at most 1): systematic
    sampling over a random order. The items are laid end to end on a line, each as long as its
    π, and the points u, u + 1, u + 2, … (u uniform in [0, 1)) pick the items they fall on."""
    if any(not 0.0 <= p <= 1.0 for p in probabilities):
        raise ValueError("inclusion probabilities must lie in [0, 1]")
    order = list(range(len(probabilities)))
    rng.shuffle(order)
    start = rng.random()
    chosen = []
    position = 0.0
    for i in order:
        low, position = position, position + probabilities[i]
        if math.ceil(position - start - 1e-12) > math.ceil(low - start - 1e-12):
            chosen.append(i)
    return chosen


def _importance_sample(
    pools: Mapping[K, Sequence[Candidate]],
    *,
    limit: int,
    existing: set[frozenset[int]],
    rng: random.Random,
    doubt: Doubt | None,
) -> list[tuple[K, Pair]]:
    """Uncertainty sampling that keeps the training data honest: `limit` unseen pairs drawn at
    random with probability π ∝ IMPORTANCE_FLOOR + doubt, each pair weighted 1/π in training
    (scaled to a mean of 1). Ranking by doubt asks only about pairs near ½ and trains on a sample
    shaped by the model's own blind spots; weighted this way, the training loss is an unbiased
    estimate of the loss over all the pairs that could have been asked (importance-weighted
    active learning), while the judgments still go mostly where the model is unsure. No spread
    over prompts: a prompt gives as many pairs as its draws.

    In the simulation (MiniLM, seeds 0-9, docs/flywheel.md) it ended level with random, not
    ahead: the drawn pairs were the uncertain ones and the weights stayed mild, but uncertain
    pairs taught no more than random ones, so it is opt-in."""
    rows = [
        (key, pair)
        for key, candidates in pools.items()
        if len(candidates) >= 2
        for pair in select_pairs(
            candidates,
            policy="uncertainty",
            max_pairs=math.comb(len(candidates), 2),
            existing=existing,
            rng=rng,
            doubt=doubt,
        )
    ]
    probabilities = inclusion_probabilities([IMPORTANCE_FLOOR + pair.priority for _, pair in rows], limit)
    drawn = systematic_sample(probabilities, rng)
    if not drawn:
        return []
    inverse = {i: 1.0 / probabilities[i] for i in drawn}
    scale = len(drawn) / sum(inverse.values())
    chosen = [(rows[i][0], replace(rows[i][1], weight=inverse[i] * scale)) for i in drawn]
    chosen.sort(key=lambda item: -item[1].priority)
    return chosen


def _informative(
    pools: Mapping[K, Sequence[Candidate]],
    ranked: Mapping[K, Sequence[Pair]],
    *,
    taken: Mapping[K, int],
    limit: int,
    per_prompt: int,
    existing: set[frozenset[int]],
) -> list[tuple[K, Pair]]:
    """Greedy expected information about the score head, one pair at a time.

    The reward model scores r = w·φ + c, and Bradley-Terry's P(a beats b) = sigmoid(w·(φa - φb)).
    Around the deployed model, a judgment on (a, b) adds p(1 - p)·d dᵀ to the Fisher information
    A of w, with d = φa - φb (in units of the round's typical difference). The pairs already
    asked add theirs on top of a weak prior, and a candidate's gain is log(1 + p(1 - p)·s²), where
    s² = dᵀA⁻¹d is how little the data says along d: D-optimal design for a logistic model. So a
    pair is worth asking when the model is unsure of it *and* its replies differ in a way the
    data has not covered yet: two replies one filler word apart have p near ½ but a short d. After
    each pick, A takes that pair's information (Sherman-Morrison), so a round does not ask the
    same question twice. Every prompt's first pair comes before any prompt's second.

    In the simulation this did worse than random and than doubt alone (docs/flywheel.md): the
    features are those of a network that is fine-tuned whole, so the last layer's information is
    a poor map of what a judgment teaches it.
    """
    if limit <= 0:
        return []
    by_id = {c.id: c for candidates in pools.values() for c in candidates}
    rows = [(key, pair) for key, pairs in ranked.items() for pair in pairs]
    if not rows:
        return []
    d = np.array([_vector(by_id[pair.a]) - _vector(by_id[pair.b]) for _, pair in rows])
    # Every pair carries the model's P(a beats b): the candidates are scored.
    probability = np.array([pair.p_a for _, pair in rows], dtype=float)
    # Feature scales differ by orders of magnitude from one model to the next (a barely trained
    # head reads a nearly constant pooler); measured in units of the round's typical difference,
    # the prior means the same thing for every model.
    scale = math.sqrt(float(np.mean(np.sum(d**2, axis=1)))) or 1.0
    d /= scale
    dim = d.shape[1]
    precision = np.eye(dim) * PRIOR_PRECISION
    for seen in existing:
        x, y = (by_id.get(i) for i in seen) if len(seen) == 2 else (None, None)
        if x is not None and y is not None:
            e = (_vector(x) - _vector(y)) / scale
            p = preference_probability(_score(x), _score(y))
            precision += p * (1 - p) * np.outer(e, e)
    covariance = np.linalg.inv(precision)
    s2 = np.einsum("ij,jk,ik->i", d, covariance, d)
    weight = probability * (1.0 - probability)
    count = dict(taken)
    available = np.array([count[key] < per_prompt for key, _ in rows])
    chosen: list[tuple[K, Pair]] = []
    while len(chosen) < limit and available.any():
        level = min(count[key] for (key, _), ok in zip(rows, available, strict=True) if ok)
        at_level = available & np.array([count[key] == level for key, _ in rows])
        gain = np.where(at_level, np.log1p(weight * s2), -np.inf)
        best = int(np.argmax(gain))
        key, pair = rows[best]
        # The task's priority: 1 - 1/(1 + p̄(1 - p̄)s²), the gain mapped onto [0, 1) like the
        # doubt it replaces, in the same order.
        chosen.append((key, replace(pair, priority=float(-np.expm1(-gain[best])))))
        count[key] += 1
        available[best] = False
        if count[key] >= per_prompt:
            available &= np.array([k != key for k, _ in rows])
        # A ← A + w d dᵀ, and with it every candidate's s², in O(n·dim).
        u = covariance @ d[best]
        w = float(weight[best])
        covariance -= w * np.outer(u, u) / (1.0 + w * float(d[best] @ u))
        s2 -= w * (d @ u) ** 2 / (1.0 + w * float(d[best] @ u))
    return chosen


def _vector(candidate: Candidate) -> np.ndarray:
    return np.asarray(candidate.features, dtype=float)


def _score(candidate: Candidate) -> float:
    assert candidate.score is not None
    return candidate.score
