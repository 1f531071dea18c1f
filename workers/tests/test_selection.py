from __future__ import annotations

import random

import pytest

from workers.selection import Candidate, preference_probability, select_pairs, uncertainty


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
