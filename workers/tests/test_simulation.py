from __future__ import annotations

import random

import pytest

from workers import simulation


def test_it_scores_responses_by_the_hidden_rule():
    preference = simulation.HiddenPreference()
    prompt = simulation.prompt_text("sky", "today")
    assert preference.score(prompt, "the sky is blue") == 2.0
    assert preference.score(prompt, "please, the sky is blue really") == 2.5
    assert preference.score(prompt, "thanks, it is green") == 1.0
    # Naming two colours is hedging, not an answer.
    assert preference.score(prompt, "blue or green") == 0.0


def test_it_makes_careless_annotators_press_the_left_key_or_any_key():
    rng = random.Random(0)
    left = simulation.Annotator("l", "left")
    careful = simulation.Annotator("c", "careful", temperature=0.5, skip_rate=0.0)
    assert {left.decide(-2.0, 2.0, rng)[0] for _ in range(50)} == {"left"}
    verdicts = [careful.decide(-2.0, 2.0, rng)[0] for _ in range(200)]
    assert verdicts.count("right") > 190
    keys = {simulation.Annotator("r", "random").decide(0.0, 1.0, rng)[0] for _ in range(200)}
    assert keys == {"left", "right", "tie", "both_bad"}


def test_it_counts_judgments_saved_to_reach_the_random_curve():
    random_curve = simulation.Curve("random", [100, 200, 300, 400], [0.6, 0.7, 0.75, 0.8])
    uncertainty = simulation.Curve("uncertainty", [100, 200, 300, 400], [0.6, 0.78, 0.82, 0.85])
    outcome = simulation.compare(random_curve, uncertainty)
    assert outcome.target == 0.8
    assert outcome.uncertainty_judgments == 300
    assert outcome.saving == pytest.approx(0.25)
    assert outcome.uncertainty_interpolated == pytest.approx(250)
    never = simulation.compare(random_curve, simulation.Curve("uncertainty", [100, 200], [0.5, 0.55]))
    assert never.saving is None


@pytest.mark.django_db
@pytest.mark.slow
def test_it_learns_over_rounds_and_catches_the_careless_annotator(settings, tmp_path, empty_queues):
    settings.MODEL_STORE = tmp_path / "models"
    settings.EXPORT_DIR = tmp_path / "exports"
    encoder = simulation.tiny_encoder_build(tmp_path / "encoder")
    config = simulation.SimulationConfig(
        selection="uncertainty",
        rounds=3,
        budget=90,
        pool_prompts=24,
        careful=4,
        careless_left=0,
        careless_random=1,
        gold_tasks=20,
        held_out=200,
        label="test",
    )
    result = simulation.run_simulation(config, encoder=encoder)

    first, last = result.rounds[0], result.rounds[-1]
    assert last.judgments == 3 * config.budget
    assert last.preference_pairs > first.preference_pairs
    # Three short rounds on a tiny model: the gain is real but small (0.565 -> 0.605 and
    # 0.55 -> 0.64 seen in two runs; thread scheduling makes runs differ slightly), so the
    # test asks for a rise, and docs/flywheel.md has the long run.
    assert last.accuracy_trained > first.accuracy_trained, [r.accuracy_trained for r in result.rounds]
    by_trust = sorted(result.annotators, key=lambda a: a.trust)
    careless = by_trust[0]
    assert careless.kind == "random" and careless.flagged, by_trust
    assert not any(a.flagged for a in by_trust[1:]), by_trust
    assert careless.median_seconds is not None and careless.median_seconds < 5
