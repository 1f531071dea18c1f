from __future__ import annotations

import math

import pytest

from feedback.metrics import (
    Vote,
    binomial_p_two_sided,
    is_low_trust,
    krippendorff_alpha_nominal,
    side_driven_share,
    trust_score,
    weighted_vote,
)


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


def test_it_tests_a_left_share_against_a_fair_coin():
    # 18 of 20: 2 * (C(20,18) + C(20,19) + C(20,20)) / 2**20.
    assert binomial_p_two_sided(18, 20) == pytest.approx(2 * (190 + 20 + 1) / 2**20)
    assert binomial_p_two_sided(2, 20) == binomial_p_two_sided(18, 20)
    assert binomial_p_two_sided(10, 20) == 1.0 and binomial_p_two_sided(11, 21) == 1.0
    assert binomial_p_two_sided(11, 20) == pytest.approx(1 - math.comb(20, 10) / 2**20)
    assert binomial_p_two_sided(0, 0) == 1.0
    # Large counts stay finite and fast.
    assert binomial_p_two_sided(100_000, 100_000) == 0.0
    assert 0.0 < binomial_p_two_sided(5_200, 10_000) < 1e-4


def test_it_leaves_a_mild_side_preference_on_a_small_sample_alone():
    assert side_driven_share(left=20, sided=20) == 1.0
    assert side_driven_share(left=0, sided=30) == 1.0
    assert side_driven_share(left=18, sided=20) == pytest.approx(0.8)
    # 17 of 20 (85 %) is p = 0.0026: not enough.
    assert side_driven_share(left=17, sided=20) == 0.0
    # Too few to say anything, however lopsided.
    assert side_driven_share(left=19, sided=19) == 0.0
    # Careful people who like the left a little: 60 % of 50, 65 % of 40, 56 % of 150.
    assert side_driven_share(left=30, sided=50) == 0.0
    assert side_driven_share(left=26, sided=40) == 0.0
    assert side_driven_share(left=84, sided=150) == 0.0
    # The same 60 % over 1,000 choices is real: a fifth of them followed the side.
    assert side_driven_share(left=600, sided=1000) == pytest.approx(0.2)


def test_it_keeps_only_the_informative_share_of_trust():
    accurate = trust_score(gold_correct=9, gold_total=10, agreed=18, agreement_total=20)
    assert trust_score(gold_correct=9, gold_total=10, agreed=18, agreement_total=20, side_driven=0.2) == (
        pytest.approx(0.8 * accurate)
    )
    # An always-left clicker agrees with the majority by chance; their votes count for nothing.
    clicker = trust_score(gold_correct=5, gold_total=10, agreed=10, agreement_total=20, side_driven=1.0)
    assert clicker == 0.0 and is_low_trust(clicker, evidence=30)
