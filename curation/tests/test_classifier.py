from __future__ import annotations

import numpy as np
import pytest

from curation import quality, services
from curation.classifier import expected_calibration_error, train_quality_classifier
from curation.models import CurationDecision, QualityModel, Status
from curation.tests.factories import add_prompt

GOOD = [
    "How do I convert a list of strings to integers in Python without a loop?",
    "What are the main differences between a virus and a bacterium?",
    "Can you suggest a vegetarian dinner I can cook in under thirty minutes?",
    "Explain why the sky looks blue during the day but red at sunset.",
    "Write a polite email asking my landlord to fix a leaking kitchen tap.",
    "What is a good way to start learning to play the guitar as an adult?",
    "How does compound interest work, with a small numeric example?",
    "Summarise the causes of the First World War in a few sentences.",
    "Which houseplants survive well in a dark apartment with little sunlight?",
    "How should I prepare for a job interview at a small software company?",
    "What is the difference between weather and climate, briefly?",
    "Help me plan a three day trip to Lisbon on a modest budget.",
]
BAD = [
    "buy cheap pills now best price click here click here click here",
    "lol lol lol lol lol lol lol lol",
    "WIN A FREE PHONE!!! visit my site now for the prize!!!",
    "ok",
    "spam spam spam eggs spam spam",
    "hot singles in your area want to meet you tonight click",
    "???????? ??????? ???????",
    "free crypto giveaway send 1 coin get 2 back guaranteed",
    "subscribe to my channel for more content like and share",
    "zzzz zzzz zzzz zzzz",
    "this is an advertisement for discount watches and bags",
    "click the link in bio for free followers",
]


def test_it_reports_held_out_auc_and_calibration_on_separable_data():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(1.0, 1.0, (100, 8)), rng.normal(-1.0, 1.0, (100, 8))]).astype(np.float32)
    y = np.array([1] * 100 + [0] * 100)
    model, report = train_quality_classifier(x, y)
    assert report.labels == 200 and report.positives == 100
    assert report.roc_auc is not None and report.roc_auc > 0.95
    assert report.ece is not None and 0 <= report.ece < 0.2
    assert model.predict_proba(x[:1])[0, 1] > 0.5  # type: ignore[attr-defined]


def test_it_computes_ece_as_the_confidence_accuracy_gap():
    probs = np.array([0.9, 0.9, 0.9, 0.9])
    labels = np.array([1, 1, 0, 0])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4)


def test_it_refuses_one_class_training_data():
    with pytest.raises(ValueError, match="both kept and rejected"):
        train_quality_classifier(np.zeros((4, 3), dtype=np.float32), np.array([1, 1, 1, 1]))


@pytest.mark.django_db
@pytest.mark.slow
def test_it_trains_on_curator_labels_and_then_scores_new_items(project, carol, settings, tmp_path):
    settings.MODEL_STORE = tmp_path / "models"
    cfg = services.curation_settings(project=project)
    cfg.classifier_min_labels = 20
    cfg.save()
    prompts = [(add_prompt(project, text), Status.KEPT) for text in GOOD]
    prompts += [(add_prompt(project, text), Status.REJECTED) for text in BAD]
    services.project_curate(project_id=project.pk)
    assert quality.classifier_status(project=project).startswith("off: 0 of 20")
    assert quality.quality_model_train_if_ready(project_id=project.pk) is None
    for prompt, label in prompts:
        decision = CurationDecision.objects.get(prompt=prompt)
        services.decision_override(decision_id=decision.pk, actor=carol, status=label)
    row = quality.quality_model_train_if_ready(project_id=project.pk)
    assert row is not None and row.is_active and row.labels == 24
    assert row.roc_auc is not None and row.brier is not None and row.ece is not None
    assert quality.classifier_status(project=project).startswith("active")
    # New items now get a score from the classifier, and junk scores below good text.
    good = add_prompt(project, "What are some tips for sleeping better when working night shifts?")
    junk = add_prompt(project, "cheap watches cheap bags click here now free free free")
    services.project_curate(project_id=project.pk)
    good_score = CurationDecision.objects.get(prompt=good).quality_score
    junk_score = CurationDecision.objects.get(prompt=junk).quality_score
    assert good_score is not None and junk_score is not None and good_score > junk_score
    # A tampered artifact is refused, and curation goes on without it.
    from pathlib import Path

    Path(row.artifact_path).write_bytes(b"not a model")
    assert quality.load_quality_model(QualityModel.objects.get(pk=row.pk)) is None
