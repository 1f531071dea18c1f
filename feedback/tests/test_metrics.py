from __future__ import annotations

import pytest

from feedback.metrics import Vote, is_low_trust, krippendorff_alpha_nominal, trust_score, weighted_vote


def test_it_gives_alpha_one_for_perfect_agreement():
    assert krippendorff_alpha_nominal([["a", "a", "a"], ["b", "b"], ["tie", "tie"]]) == pytest.approx(1.0)


def test_it_matches_krippendorffs_worked_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example:
    # 4 coders, 12 units, alpha = 0.743.
    data = [
        [1, 1, 1],  # unit 1 (one coder missing)
        [2, 2, 3, 2],
        [3, 3, 3, 3],
        [3, 3, 3, 3],
        [2, 2, 2, 2],
        [1, 2, 3, 4],
        [4, 4, 4, 4],
        [1, 1, 2, 1],
        [2, 2, 2, 2],
        [5, 5, 5],
        [1, 1],
        [3],
    ]
    assert krippendorff_alpha_nominal(data) == pytest.approx(0.743, abs=0.001)


def test_it_returns_none_without_pairable_values():
    assert krippendorff_alpha_nominal([["a"], ["b"]]) is None


def test_it_weights_votes_by_trust():
    votes = [Vote("b", 0.2), Vote("b", 0.2), Vote("a", 0.9, "clear")]
    result = weighted_vote(votes)
    assert result.winner == "a"
    assert result.agreement == pytest.approx(0.9 / 1.3)
    assert result.margin == 1.0


def test_it_calls_a_dead_heat_no_decision():
    assert weighted_vote([Vote("a", 1.0), Vote("b", 1.0)]).winner is None


def test_it_lowers_trust_for_a_careless_annotator():
    careful = trust_score(gold_correct=9, gold_total=10, agreed=18, agreement_total=20)
    careless = trust_score(gold_correct=2, gold_total=10, agreed=6, agreement_total=20)
    assert careful > 0.8 > careless
    assert is_low_trust(careless, evidence=30)
    assert not is_low_trust(careless, evidence=2)
