from __future__ import annotations

import random
from dataclasses import replace

import pytest

from training.services import gate_settings
from workers import simulation
from workers.pipeline import pipeline_settings


def test_it_scores_responses_by_the_hidden_rule():
    preference = simulation.HiddenPreference()
    prompt = simulation.prompt_text("sky", "today")
    assert preference.score(prompt, "the sky is blue") == 2.0
    assert preference.score(prompt, "please, the sky is blue really") == 2.5
    assert preference.score(prompt, "thanks, it is green") == 1.0
    # Naming two colours is hedging, not an answer.
    assert preference.score(prompt, "blue or green") == 0.0


def test_the_oracle_asks_about_the_models_confident_mistakes_first():
    from feedback.models import Prompt, Response
    from workers.selection import Candidate, preference_probability

    prompt = Prompt(text=simulation.prompt_text("sky", "today"))
    texts = {1: "the sky is blue", 2: "it is green", 3: "it is red", 4: "please, it is blue"}
    responses = {pk: Response(pk=pk, prompt=prompt, text=text) for pk, text in texts.items()}
    doubt = simulation._oracle_doubt(simulation.HiddenPreference(), responses)
    # The model prefers the wrong colour, confidently (score 3 against 0): P(wrong) = P(2 beats 1).
    wrong = doubt(Candidate(1, 0.0, "x"), Candidate(2, 3.0, "x"))
    assert wrong == pytest.approx(preference_probability(3.0, 0.0)) and wrong > 0.9
    # The same order the right way round, on either side.
    right = preference_probability(0.0, 3.0)
    assert doubt(Candidate(4, 3.0, "x"), Candidate(2, 0.0, "x")) == pytest.approx(right)
    assert doubt(Candidate(2, 0.0, "x"), Candidate(4, 3.0, "x")) == pytest.approx(right)
    # Equal hidden scores have no right answer: never worth asking.
    assert doubt(Candidate(2, 0.0, "x"), Candidate(3, 0.0, "x")) == 0.0


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
def test_it_gives_the_project_the_gate_it_is_asked_for(tmp_path):
    config = simulation.SimulationConfig(
        pool_prompts=2, gold_tasks=2, held_out=10, gate_rule="not_worse", gate_margin=0.0, label="gate"
    )
    world = simulation._setup(config, tmp_path)
    gate = gate_settings(project=world.project)
    assert (gate.reward_rule, gate.reward_min_gain_points) == ("not_worse", 0.0)
    # Without either, the project keeps the product's defaults.
    world = simulation._setup(replace(config, gate_rule=None, gate_margin=None, label="default"), tmp_path)
    gate = gate_settings(project=world.project)
    assert (gate.reward_rule, gate.reward_min_gain_points) == ("margin", 1.0)
    # Warm start and the training config are the project's pipeline settings, as step_train reads.
    assert not pipeline_settings(project=world.project).reward_warm_start
    world = simulation._setup(replace(config, warm_start=True, seed=7, label="warm"), tmp_path)
    cfg = pipeline_settings(project=world.project)
    assert cfg.reward_warm_start and cfg.reward_config == {**config.reward_config, "seed": 7}


@pytest.mark.django_db
@pytest.mark.slow
def test_it_learns_over_rounds_and_catches_both_careless_annotators(settings, tmp_path, empty_queues):
    settings.MODEL_STORE = tmp_path / "models"
    settings.EXPORT_DIR = tmp_path / "exports"
    encoder = simulation.tiny_encoder_build(tmp_path / "encoder")
    config = simulation.SimulationConfig(
        selection="uncertainty",
        rounds=3,
        budget=90,
        pool_prompts=24,
        careful=4,
        careless_left=1,
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
    # Both careless annotators end at the bottom and flagged: the random clicker by gold and
    # agreement, the left clicker by the side test (agreement alone leaves it near 0.5).
    by_trust = sorted(result.annotators, key=lambda a: a.trust)
    assert {a.kind for a in by_trust[:2]} == {"left", "random"}, by_trust
    assert all(a.flagged for a in by_trust[:2]), by_trust
    assert not any(a.flagged for a in by_trust[2:]), by_trust
    left = next(a for a in by_trust if a.kind == "left")
    assert left.left_share == 1.0 and left.trust == 0.0, left
    assert all(a.median_seconds is not None and a.median_seconds < 5 for a in by_trust[:2])
    # Selection is measured: the gap of queued pairs and the share of full tasks with a winner.
    assert all(0 <= r.queued_equal <= 1 and r.queued_gap >= 0 for r in result.rounds)
    assert 0 < last.labels_decided <= 1 and last.labels_right > 0.5


def test_it_trains_on_the_products_reward_base_when_asked(tmp_path):
    from training.reward import default_reward_base

    # MiniLM as installed, at a learning rate for a pretrained model; nothing is built.
    assert simulation.reward_base_path("minilm", tmp_path / "encoder") == default_reward_base()
    assert not (tmp_path / "encoder").exists()
    assert simulation.MINILM_REWARD_CONFIG["lr"] < simulation.REWARD_CONFIG["lr"]
    with pytest.raises(ValueError, match="unknown reward base"):
        simulation.reward_base_path("gpt", tmp_path)
