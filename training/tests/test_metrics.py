import math
import random

import pytest

from training.evaluate import (
    bootstrap_ci,
    discordant_pairs,
    expected_calibration_error,
    high_agreement_accuracy,
    length_baseline_accuracy,
    mean_margin,
    pairwise_accuracy,
    pairwise_ece,
    sigmoid,
    sign_test_p,
    win_rate,
)


def test_it_counts_pairwise_accuracy_with_ties_as_half():
    # Pairs: win, loss, tie, win.
    assert pairwise_accuracy([2.0, 0.0, 1.0, 5.0], [1.0, 3.0, 1.0, -1.0]) == pytest.approx(2.5 / 4)


def test_it_averages_the_margin():
    assert mean_margin([2.0, 0.0, 1.0], [1.0, 3.0, 1.0]) == pytest.approx((1 - 3 + 0) / 3)


def test_it_computes_ece_by_hand():
    # Two bins. Confidences 0.9, 0.9 (bin [0.9, 1.0]): one right, one wrong, so |0.5 - 0.9| = 0.4.
    # Confidences 0.6 and 0.6 (p = 0.4 predicts 0): both right, so |1.0 - 0.6| = 0.4.
    # Each bin holds half the items: ECE = 0.5 * 0.4 + 0.5 * 0.4 = 0.4.
    probabilities = [0.9, 0.9, 0.6, 0.4]
    outcomes = [1.0, 0.0, 1.0, 0.0]
    assert expected_calibration_error(probabilities, outcomes, n_bins=2) == pytest.approx(0.4)


def test_it_gives_zero_ece_to_a_calibrated_predictor():
    # Says 0.75 four times and is right three times.
    assert expected_calibration_error([0.75] * 4, [1.0, 1.0, 1.0, 0.0], n_bins=5) == pytest.approx(0.0)


def test_it_computes_pairwise_ece_from_score_gaps():
    # A gap of log(3) gives sigmoid = 0.75; three pairs right, one wrong (gap -log(3): p = 0.25,
    # confidence 0.75, predicts the rejected one). Accuracy 0.75 at confidence 0.75: calibrated.
    gap = math.log(3)
    assert pairwise_ece([gap, gap, gap, 0.0], [0.0, 0.0, 0.0, gap]) == pytest.approx(0.0, abs=1e-12)
    # Overconfident: always 0.99 sure, right half the time.
    big = math.log(99)
    assert pairwise_ece([big, 0.0], [0.0, big]) == pytest.approx(0.49)


def test_it_does_not_overflow_the_sigmoid():
    assert sigmoid(1000.0) == 1.0
    assert sigmoid(-1000.0) == 0.0
    assert sigmoid(0.0) == 0.5


def test_it_scores_the_longer_response_baseline():
    # Longer wins, shorter loses, equal length ties.
    assert length_baseline_accuracy(["long one", "a", "abc"], ["short", "bb", "xyz"]) == pytest.approx(
        1.5 / 3
    )


def test_it_restricts_accuracy_to_high_agreement_pairs():
    accuracy, n = high_agreement_accuracy(
        [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [1.0, 0.8, 0.6, 0.79], threshold=0.8
    )
    assert (accuracy, n) == (1.0, 2)
    accuracy, n = high_agreement_accuracy([1.0], [0.0], [0.5], threshold=0.8)
    assert math.isnan(accuracy) and n == 0


def test_it_returns_nan_for_empty_inputs():
    assert math.isnan(pairwise_accuracy([], []))
    assert math.isnan(mean_margin([], []))
    assert math.isnan(pairwise_ece([], []))
    assert math.isnan(win_rate([]))
    assert all(math.isnan(x) for x in bootstrap_ci([]))


def test_it_refuses_unpaired_inputs():
    with pytest.raises(ValueError, match="differ in length"):
        pairwise_accuracy([1.0, 2.0], [1.0])


def test_it_brackets_the_true_win_rate_with_the_bootstrap():
    rng = random.Random(7)
    outcomes = [1.0 if rng.random() < 0.7 else 0.0 for _ in range(400)]
    low, high = bootstrap_ci(outcomes, seed=1)
    assert low < 0.7 < high
    assert low <= win_rate(outcomes) <= high
    # About ±1.96 * sqrt(0.21 / 400) = ±0.045 around the sample mean.
    assert 0.06 < high - low < 0.12


def test_it_covers_the_true_rate_about_95_percent_of_the_time():
    rng = random.Random(3)
    covered = 0
    for trial in range(100):
        outcomes = [1.0 if rng.random() < 0.3 else 0.0 for _ in range(100)]
        low, high = bootstrap_ci(outcomes, resamples=500, seed=trial)
        covered += low <= 0.3 <= high
    assert 88 <= covered <= 100


def test_it_makes_the_bootstrap_reproducible():
    outcomes = [1.0, 0.0, 0.5, 1.0, 1.0, 0.0]
    assert bootstrap_ci(outcomes, seed=5) == bootstrap_ci(outcomes, seed=5)


def test_it_counts_the_pairs_two_models_order_differently():
    # A tie loses to a right answer and beats a wrong one.
    assert discordant_pairs([1, 1, 0, 0.5, 1, 0], [1, 0, 1, 0, 0.5, 0]) == (3, 1)


@pytest.mark.parametrize(
    ("worse", "better", "p"),
    [(0, 0, 1.0), (0, 5, 1.0), (5, 0, 1 / 32), (3, 3, 42 / 64), (8, 2, 56 / 1024)],
)
def test_it_computes_the_one_sided_sign_test_by_hand(worse, better, p):
    assert sign_test_p(worse, better) == pytest.approx(p)
