from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import replace

import pytest

from workers.selection import (
    Candidate,
    committee_doubt,
    contrast,
    inclusion_probabilities,
    preference_probability,
    select_pairs,
    select_tasks,
    systematic_sample,
    uncertainty,
)


def test_it_puts_the_most_uncertain_pairs_first():
    candidates = [Candidate(1, 0.0, "policy-v1"), Candidate(2, 0.1, "policy-v1"), Candidate(3, 5.0, "human")]
    pairs = select_pairs(candidates, policy="uncertainty", max_pairs=3, existing=set())
    assert frozenset((pairs[0].a, pairs[0].b)) == frozenset((1, 2))
    assert pairs[0].priority == pytest.approx(uncertainty(preference_probability(0.0, 0.1)))
    assert [p.priority for p in pairs] == sorted((p.priority for p in pairs), reverse=True)
    # The suggestion is P(A preferred), whichever side A ended up on.
    for pair in pairs:
        scores = {c.id: c.score for c in candidates}
        assert pair.p_a == pytest.approx(preference_probability(scores[pair.a], scores[pair.b]))


def test_a_doubt_from_outside_replaces_the_models_but_keeps_the_spread():
    # The model is surest about (1, 3) and (4, 6); the outside doubt ranks exactly those first.
    pools = {
        0: [Candidate(1, 0.0, "x"), Candidate(2, 0.1, "x"), Candidate(3, 5.0, "x")],
        1: [Candidate(4, 0.0, "x"), Candidate(5, 0.1, "x"), Candidate(6, 5.0, "x")],
    }
    wanted = {frozenset((1, 3)): 0.9, frozenset((4, 6)): 0.8}

    def doubt(x: Candidate, y: Candidate) -> float:
        return wanted.get(frozenset((x.id, y.id)), 0.1)

    rng = random.Random(0)
    chosen = select_tasks(pools, policy="uncertainty", limit=2, existing=set(), rng=rng, doubt=doubt)
    assert [(key, frozenset((p.a, p.b)), p.priority) for key, p in chosen] == [
        (0, frozenset((1, 3)), 0.9),
        (1, frozenset((4, 6)), 0.8),
    ]
    # The suggestion shown to annotators is still the model's own P(A preferred).
    assert chosen[0][1].p_a is not None and chosen[0][1].p_a != pytest.approx(0.5, abs=0.4)
    # Random selection ignores it.
    chosen = select_tasks(pools, policy="random", limit=4, existing=set(), rng=random.Random(0), doubt=doubt)
    assert {p.priority for _, p in chosen} == {0.0}


def test_it_skips_pairs_that_already_exist():
    candidates = [
        Candidate(1, None, "human"),
        Candidate(2, None, "policy-v1"),
        Candidate(3, None, "policy-v2"),
    ]
    pairs = select_pairs(candidates, policy="random", max_pairs=5, existing={frozenset((1, 2))})
    assert {frozenset((p.a, p.b)) for p in pairs} == {frozenset((1, 3)), frozenset((2, 3))}
    assert all(p.p_a is None and p.priority == 0.0 for p in pairs)


def test_it_pairs_the_new_model_against_the_others():
    candidates = [
        Candidate(1, None, "policy-v1"),
        Candidate(2, None, "policy-v2"),
        Candidate(3, None, "policy-v1"),
    ]
    pairs = select_pairs(
        candidates, policy="new_vs_old", max_pairs=5, existing=set(), newest_producer="policy-v2"
    )
    assert all(2 in (p.a, p.b) for p in pairs) and len(pairs) == 2


def test_it_randomises_which_side_is_a():
    candidates = [Candidate(1, 0.0, "x"), Candidate(2, 1.0, "y")]
    sides = {
        select_pairs(candidates, policy="uncertainty", max_pairs=1, existing=set(), rng=random.Random(s))[0].a
        for s in range(20)
    }
    assert sides == {1, 2}


def _pools(prompts: int, scores: list[float | None]) -> dict[int, list[Candidate]]:
    ids = iter(range(1, 10_000))
    return {key: [Candidate(next(ids), s, "policy-v1") for s in scores] for key in range(prompts)}


def test_it_spreads_random_tasks_over_every_prompt():
    pools = _pools(48, [None] * 4)
    seen: set[int] = set()
    for seed in range(5):
        chosen = select_tasks(pools, policy="random", limit=20, existing=set(), rng=random.Random(seed))
        assert len(chosen) == 20 and all(pair.priority == 0.0 for _, pair in chosen)
        assert max(Counter(key for key, _ in chosen).values()) <= 2
        seen |= {key for key, _ in chosen}
    assert len(seen) > 40


def test_it_asks_each_prompt_its_most_uncertain_question_before_any_prompt_a_second():
    # Prompt k's closest pair is 0.01 * (k + 1) apart; every other pair is 3 or more apart.
    ids = iter(range(1, 10_000))
    pools = {
        key: [
            Candidate(next(ids), 0.0, "x"),
            Candidate(next(ids), 0.01 * (key + 1), "x"),
            Candidate(next(ids), 3.0, "x"),
            Candidate(next(ids), 6.0, "x"),
        ]
        for key in range(10)
    }
    chosen = select_tasks(
        pools, policy="uncertainty", limit=15, existing=set(), explore=0.0, rng=random.Random(0)
    )
    assert len(chosen) == 15
    firsts = [pair for key, pair in chosen if {pair.a, pair.b} == {pools[key][0].id, pools[key][1].id}]
    assert len({key for key, _ in chosen}) == 10 and len(firsts) == 10
    assert [p.priority for _, p in chosen] == sorted((p.priority for _, p in chosen), reverse=True)
    # A prompt's second question shares no response with its first.
    for key in range(10):
        pairs = [pair for k, pair in chosen if k == key]
        if len(pairs) == 2:
            assert not {pairs[0].a, pairs[0].b} & {pairs[1].a, pairs[1].b}


def test_it_draws_the_exploration_share_at_random():
    pools = {
        key: [Candidate(key * 10 + i, s, "x") for i, s in enumerate([0.0, 0.05, 2.0, 4.0, 6.0])]
        for key in range(40)
    }
    greedy = select_tasks(
        pools, policy="uncertainty", limit=20, existing=set(), explore=0.0, rng=random.Random(1)
    )
    # Without exploration every task is a prompt's closest pair (the candidates 0 and 1).
    assert all({pair.a % 10, pair.b % 10} == {0, 1} for _, pair in greedy)
    mixed = select_tasks(
        pools, policy="uncertainty", limit=20, existing=set(), explore=0.5, rng=random.Random(1)
    )
    others = [pair for _, pair in mixed if {pair.a % 10, pair.b % 10} != {0, 1}]
    # Ten random draws among ten pairs per prompt: most are not the closest one.
    assert 5 <= len(others) <= 10
    assert all(
        pair.priority == pytest.approx(1 - abs(2 * pair.p_a - 1)) for _, pair in mixed if pair.p_a is not None
    )


def test_it_selects_at_random_until_a_reward_model_scores_every_candidate():
    pools = _pools(10, [None, None, None])
    chosen = select_tasks(pools, policy="uncertainty", limit=8, existing=set(), rng=random.Random(0))
    assert len(chosen) == 8 and all(pair.p_a is None and pair.priority == 0.0 for _, pair in chosen)


def _featured(key: int, rows: list[tuple[float, tuple[float, ...]]]) -> list[Candidate]:
    return [Candidate(key * 100 + i, score, "x", features) for i, (score, features) in enumerate(rows)]


def test_it_asks_about_pairs_that_differ_before_near_copies_it_is_as_unsure_of():
    # Candidates 0 and 1 score the same (p = 0.5) but the model sees them as near copies; 2 and 3
    # are one point apart (p = 0.73) but differ along a direction no judgment has covered.
    pools = {0: _featured(0, [(0.0, (0.0, 0.0)), (0.0, (0.05, 0.0)), (5.0, (0.0, 3.0)), (6.0, (0.0, 0.0))])}
    # The uncertainty policy reads the doubt alone, features or not.
    doubt_only = select_tasks(pools, policy="uncertainty", limit=1, existing=set(), rng=random.Random(0))
    assert {doubt_only[0][1].a, doubt_only[0][1].b} == {0, 1}
    [(_, pair)] = select_tasks(pools, policy="information", limit=1, existing=set(), rng=random.Random(0))
    assert {pair.a, pair.b} == {2, 3} and pair.priority > 0
    # The suggestion is still the model's own P(A preferred).
    scores = {c.id: c.score for c in pools[0]}
    assert pair.p_a == pytest.approx(preference_probability(scores[pair.a], scores[pair.b]))


def test_it_does_not_ask_the_same_question_twice_in_a_round():
    # Prompts 0 and 1 each hold a coin-toss pair that differs along x; prompt 2 a pair the model
    # is a little surer of (p = 0.55), along y.
    pools = {
        0: _featured(0, [(0.0, (0.0, 0.0)), (0.0, (1.1, 0.0))]),
        1: _featured(1, [(0.0, (0.0, 0.0)), (0.0, (1.1, 0.0))]),
        2: _featured(2, [(0.0, (0.0, 0.0)), (0.2, (0.0, 1.0))]),
    }
    doubt_only = select_tasks(pools, policy="uncertainty", limit=2, existing=set(), rng=random.Random(0))
    assert {key for key, _ in doubt_only} == {0, 1}
    chosen = select_tasks(pools, policy="information", limit=2, existing=set(), rng=random.Random(0))
    # The first x pair is worth most; once it is asked, the other x pair teaches less than y.
    assert chosen[0][0] in (0, 1) and chosen[1][0] == 2
    assert chosen[0][1].priority > chosen[1][1].priority


def test_it_counts_the_pairs_already_asked():
    # Prompt 0's pair is a coin toss along x and twice as long as prompt 1's, along y (p = 0.55).
    pools = {
        0: _featured(0, [(0.0, (0.0, 0.0)), (0.0, (2.2, 0.0))]),
        1: _featured(1, [(0.0, (0.0, 0.0)), (0.2, (0.0, 1.0))]),
        2: _featured(2, [(0.0, (1.1 * k, 0.0)) for k in range(6)]),
    }
    [(key, _)] = select_tasks(pools, policy="information", limit=1, existing=set(), rng=random.Random(0))
    assert key in (0, 2)
    # Once every pair of prompt 2, all along x, has been judged, y is what the model knows least.
    asked = {frozenset((200 + i, 200 + j)) for i in range(6) for j in range(i + 1, 6)}
    [(key, _)] = select_tasks(pools, policy="information", limit=1, existing=asked, rng=random.Random(0))
    assert key == 1


def test_it_draws_the_validation_prompts_pairs_at_random_whatever_the_policy():
    pools = {
        key: [Candidate(key * 10 + i, s, "x") for i, s in enumerate([0.0, 0.05, 2.0, 4.0, 6.0])]
        for key in range(40)
    }
    held = set(range(10))
    for policy in ("random", "uncertainty", "committee", "information"):
        seen: Counter[int] = Counter()
        for seed in range(20):
            chosen = select_tasks(
                pools, policy=policy, limit=20, existing=set(), validation=held, rng=random.Random(seed)
            )
            assert len(chosen) == 20
            # A quarter of the prompts, a quarter of the tasks: the same for every policy.
            assert sum(key in held for key, _ in chosen) == 5
            assert [p.priority for _, p in chosen] == sorted((p.priority for _, p in chosen), reverse=True)
            seen.update(frozenset((pair.a % 10, pair.b % 10)) for key, pair in chosen if key in held)
        # Ten pairs per prompt, drawn uniformly: the closest one is about a tenth of them.
        assert seen[frozenset((0, 1))] < 30 and len(seen) == 10
    # Uncertainty still takes the closest pair of every other prompt it asks.
    chosen = select_tasks(
        pools, policy="uncertainty", limit=20, existing=set(), validation=held, rng=random.Random(0)
    )
    assert all({pair.a % 10, pair.b % 10} == {0, 1} for key, pair in chosen if key not in held)
    # The held-out tasks are spread through the queue, not all at its end.
    ranks = [rank for rank, (key, _) in enumerate(chosen) if key in held]
    assert min(ranks) < 5 and max(ranks) >= 15


def test_committee_doubt_is_highest_where_the_members_flip():
    assert committee_doubt([0.9, 0.1]) == pytest.approx(0.9)
    assert committee_doubt([0.5, 0.5, 0.5]) == pytest.approx(0.5)
    assert committee_doubt([0.9, 0.9]) == pytest.approx(0.1)
    assert committee_doubt([1.0, 1.0, 1.0]) == pytest.approx(0.0)
    # One member: half its uncertainty, so the same order as the uncertainty policy.
    for p in (0.1, 0.3, 0.5, 0.8):
        assert committee_doubt([p]) == pytest.approx(uncertainty(p) / 2)
    with pytest.raises(ValueError):
        committee_doubt([])


def _committee(key: int, rows: list[tuple[float, ...]]) -> list[Candidate]:
    """Candidates whose committee scores are `rows`; the deployed model's score is the first."""
    return [Candidate(key * 100 + i, row[0], "x", committee=row) for i, row in enumerate(rows)]


def test_committee_asks_where_the_versions_disagree_before_where_they_agree():
    # Candidates 0 and 1: the deployed model is confident 0 wins (p = 0.95), the two other
    # versions are as confident 1 wins. Candidates 2 and 3: every member says a coin toss.
    # Candidates 0 and 2, 1 and 3, ...: everyone agrees, far apart.
    rows = [(3.0, 0.0, 0.0), (0.0, 3.0, 3.0), (10.0, 10.0, 10.0), (10.0, 10.0, 10.0)]
    pools = {0: _committee(0, rows)}
    pairs = select_pairs(pools[0], policy="committee", max_pairs=6, existing=set())
    assert {pairs[0].a, pairs[0].b} == {0, 1} and {pairs[1].a, pairs[1].b} == {2, 3}
    assert pairs[0].priority > pairs[1].priority > pairs[2].priority
    # Uncertainty, which reads the deployed model alone, asks about the coin toss only.
    doubt = select_pairs(pools[0], policy="uncertainty", max_pairs=6, existing=set())
    assert {doubt[0].a, doubt[0].b} == {2, 3}
    ranked = [pair for pair in doubt if {pair.a, pair.b} == {0, 1}]
    assert ranked and ranked[0].priority < 0.2
    # The suggestion is still the deployed model's P(A preferred).
    for pair in pairs:
        assert pair.p_a == pytest.approx(preference_probability(rows[pair.a][0], rows[pair.b][0]))


def test_committee_keeps_the_spread_over_prompts():
    # Prompt k: its candidates 0 and 1 are a flip between versions (a larger one for larger k),
    # 2 and 3 a pair everyone agrees on.
    pools = {
        key: _committee(key, [(1.0 + 0.1 * key, 0.0), (0.0, 1.0 + 0.1 * key), (5.0, 5.0), (9.0, 9.0)])
        for key in range(10)
    }
    chosen = select_tasks(pools, policy="committee", limit=15, existing=set(), rng=random.Random(0))
    assert len(chosen) == 15 and len({key for key, _ in chosen}) == 10
    for key in range(10):
        pairs = [pair for k, pair in chosen if k == key]
        assert {pairs[0].a % 100, pairs[0].b % 100} == {0, 1}
        if len(pairs) == 2:
            # A prompt's second question shares no response with its first.
            assert not {pairs[0].a, pairs[0].b} & {pairs[1].a, pairs[1].b}
    assert [p.priority for _, p in chosen] == sorted((p.priority for _, p in chosen), reverse=True)
    # Every prompt's first question comes before any second, ordered by how far the members are
    # apart.
    firsts = [key for key, pair in chosen if {pair.a % 100, pair.b % 100} == {0, 1}]
    assert firsts == sorted(firsts, reverse=True)


def test_committee_is_uncertainty_without_the_members_scores():
    pools = {
        key: [Candidate(key * 10 + i, s, "x") for i, s in enumerate([0.0, 0.05, 2.0, 4.0, 6.0])]
        for key in range(10)
    }
    by_committee = select_tasks(pools, policy="committee", limit=10, existing=set(), rng=random.Random(3))
    by_doubt = select_tasks(pools, policy="uncertainty", limit=10, existing=set(), rng=random.Random(3))
    assert [(k, p.a, p.b, p.priority) for k, p in by_committee] == [
        (k, p.a, p.b, p.priority) for k, p in by_doubt
    ]


def _embedded(key: int, rows: list[tuple[float, tuple[float, float]]]) -> list[Candidate]:
    """Candidates with a score and a (not yet unit) 2-d embedding each, normalised here."""
    return [
        Candidate(key * 100 + i, score, "x", embedding=(x / math.hypot(x, y), y / math.hypot(x, y)))
        for i, (score, (x, y)) in enumerate(rows)
    ]


def test_contrast_is_one_minus_the_cosine_within_zero_and_one():
    same, right_angle, opposite = _embedded(0, [(0.0, (1.0, 0.0)), (0.0, (0.0, 1.0)), (0.0, (-1.0, 0.0))])
    assert contrast(same, same) == pytest.approx(0.0)
    assert contrast(same, right_angle) == pytest.approx(1.0)
    assert contrast(same, opposite) == 1.0
    near = _embedded(1, [(0.0, (1.0, 0.1))])[0]
    assert 0.0 < contrast(same, near) < 0.01


def test_contrast_asks_where_the_model_is_unsure_and_the_replies_differ_most():
    # 0 and 1: a coin toss, but near copies (a word moved). 2 and 3: as close a call, and their
    # contents differ. 4 is far from everyone but the model is sure about it.
    rows = [(0.0, (1.0, 0.0)), (0.0, (1.0, 0.05)), (0.1, (1.0, 0.0)), (0.1, (0.0, 1.0)), (9.0, (-1.0, 0.0))]
    pools = {0: _embedded(0, rows)}
    pairs = select_pairs(pools[0], policy="contrast", max_pairs=10, existing=set())
    assert {pairs[0].a % 100, pairs[0].b % 100} == {2, 3}
    first = pairs[0]
    by_id = {c.id: c for c in pools[0]}
    doubt = uncertainty(preference_probability(by_id[first.a].score, by_id[first.b].score))  # type: ignore[arg-type]
    assert first.priority == pytest.approx(doubt * contrast(by_id[first.a], by_id[first.b]))
    assert [p.priority for p in pairs] == sorted((p.priority for p in pairs), reverse=True)
    # Uncertainty alone asks about the near copies first.
    doubt_only = select_pairs(pools[0], policy="uncertainty", max_pairs=10, existing=set())
    assert {doubt_only[0].a % 100, doubt_only[0].b % 100} == {0, 1}
    # The suggestion is still the model's own P(A preferred).
    assert first.p_a == pytest.approx(preference_probability(by_id[first.a].score, by_id[first.b].score))  # type: ignore[arg-type]


def test_contrast_keeps_the_spread_over_prompts_and_is_uncertainty_without_embeddings():
    pools = {
        key: _embedded(key, [(0.0, (1.0, 0.0)), (0.0, (1.0, 0.02)), (0.2, (0.0, 1.0))]) for key in range(10)
    }
    chosen = select_tasks(pools, policy="contrast", limit=10, existing=set(), rng=random.Random(0))
    assert len({key for key, _ in chosen}) == 10
    assert all({pair.a % 100, pair.b % 100} != {0, 1} for _, pair in chosen)
    bare = {key: [replace(c, embedding=None) for c in candidates] for key, candidates in pools.items()}
    by_contrast = select_tasks(bare, policy="contrast", limit=10, existing=set(), rng=random.Random(3))
    by_doubt = select_tasks(bare, policy="uncertainty", limit=10, existing=set(), rng=random.Random(3))
    assert [(k, p.a, p.b, p.priority) for k, p in by_contrast] == [
        (k, p.a, p.b, p.priority) for k, p in by_doubt
    ]


def test_inclusion_probabilities_follow_the_weights_capped_at_one():
    assert inclusion_probabilities([1, 1, 2], 2) == pytest.approx([0.5, 0.5, 1.0])
    # 10 out of 13: the big one would get 10·10/13 > 1, so it is certain and the rest share 9.
    probabilities = inclusion_probabilities([10, 1, 1, 1], 2)
    assert probabilities == pytest.approx([1.0, 1 / 3, 1 / 3, 1 / 3])
    assert sum(inclusion_probabilities([0.1, 0.5, 0.9, 1.1, 0.3], 3)) == pytest.approx(3)
    assert inclusion_probabilities([0, 0, 0, 0], 2) == pytest.approx([0.5] * 4)
    assert inclusion_probabilities([1, 2], 5) == [1.0, 1.0]
    with pytest.raises(ValueError, match="non-negative"):
        inclusion_probabilities([1, -1], 1)


def test_systematic_sampling_draws_each_item_with_its_probability():
    probabilities = inclusion_probabilities([0.1, 0.2, 0.5, 1.0, 1.1, 0.3, 0.8], 3)
    rng = random.Random(0)
    counts: Counter[int] = Counter()
    draws = 6000
    for _ in range(draws):
        chosen = systematic_sample(probabilities, rng)
        assert len(chosen) == 3 and len(set(chosen)) == 3
        counts.update(chosen)
    for i, p in enumerate(probabilities):
        # Binomial standard error at most 0.0065 over 6,000 draws: 4 of them.
        assert abs(counts[i] / draws - p) < 0.026, (i, p, counts[i] / draws)


def test_importance_draws_by_doubt_and_weights_by_the_inverse_of_the_chance():
    # Per prompt: two close replies (p near ½) and two far from them and each other.
    pools = {
        key: [Candidate(key * 10 + i, s, "x") for i, s in enumerate([0.0, 0.05, 4.0, 9.0])]
        for key in range(30)
    }
    close: list[float] = []
    far: list[float] = []
    taken = Counter()
    for seed in range(40):
        chosen = select_tasks(pools, policy="importance", limit=24, existing=set(), rng=random.Random(seed))
        assert len(chosen) == 24
        assert sum(pair.weight for _, pair in chosen) == pytest.approx(24)
        for _, pair in chosen:
            is_close = {pair.a % 10, pair.b % 10} == {0, 1}
            (close if is_close else far).append(pair.weight)
            taken[is_close] += 1
    # 30 close pairs (doubt ≈ 0.98) against 150 far ones (doubt ≤ 0.04): the close ones are asked
    # far more often than their sixth of the pool, but the far ones are still asked, and count
    # about eight times as much each when they are.
    assert taken[True] > taken[False] > 0
    ratio = (sum(far) / len(far)) / (sum(close) / len(close))
    assert 6 < ratio < 12


def test_importance_is_random_with_equal_weights_until_a_model_scores_and_spares_the_validation():
    pools = _pools(20, [None] * 4)
    chosen = select_tasks(pools, policy="importance", limit=10, existing=set(), rng=random.Random(0))
    assert len(chosen) == 10 and all(pair.weight == 1.0 for _, pair in chosen)
    scored = {
        key: [Candidate(key * 10 + i, s, "x") for i, s in enumerate([0.0, 0.1, 3.0])] for key in range(20)
    }
    chosen = select_tasks(
        scored, policy="importance", limit=10, existing=set(), validation=set(range(5)), rng=random.Random(0)
    )
    held = [pair for key, pair in chosen if key < 5]
    assert len(held) == 2 and all(pair.weight == 1.0 for pair in held)
    assert any(pair.weight != 1.0 for key, pair in chosen if key >= 5)
