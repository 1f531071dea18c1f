from __future__ import annotations

import random

import pytest

from feedback import selectors, services
from feedback.models import Judgment
from feedback.tests.factories import make_task, make_user

pytestmark = pytest.mark.django_db


def test_it_flags_an_always_left_clicker_and_drops_their_votes(project):
    """A left clicker agrees with the majority by chance, so agreement alone leaves their trust
    near the flag line; the side test takes it down and the flag follows."""
    rng = random.Random(0)
    careful = [make_user(f"careful{i}") for i in range(3)]
    clicker = make_user("leftclicker")
    for number in range(40):
        task = make_task(project)
        truth = "a" if number % 2 else "b"
        for user in careful:
            # Careful people read the text; whichever side it is drawn on.
            Judgment.objects.create(task=task, annotator=user, choice=truth, left_side=rng.choice("ab"))
        left = rng.choice("ab")
        Judgment.objects.create(task=task, annotator=clicker, choice=left, left_side=left)
    services.annotator_trust_refresh()
    stats = {s.username: s for s in selectors.annotator_stats(project=project)}
    assert stats["leftclicker"].left_share == 1.0 and stats["leftclicker"].side_driven == 1.0
    assert stats["leftclicker"].flagged and stats["leftclicker"].trust == 0.0
    # Agreement alone would have put them at about a half, not below it.
    assert stats["leftclicker"].agreement == pytest.approx(0.5, abs=0.15)
    for user in careful:
        assert stats[user.username].side_driven == 0.0
        assert not stats[user.username].flagged and stats[user.username].trust > 0.85
    # Downstream their vote weighs nothing: one careful vote beats two from the clicker.
    task = make_task(project)
    Judgment.objects.create(task=task, annotator=careful[0], choice="a", left_side="b")
    Judgment.objects.create(task=task, annotator=clicker, choice="b", left_side="b")
    preference = next(p for p in selectors.aggregated_preferences(project=project) if p.task.pk == task.pk)
    assert preference.aggregate.winner == "a"


def test_it_does_not_flag_a_careful_annotator_with_a_mild_left_preference(project):
    rng = random.Random(1)
    careful = [make_user(f"careful{i}") for i in range(3)]
    alice = make_user("alice")
    # 26 of 40 on the left (65 %), every one agreeing with the others: a taste, not a pattern.
    for number in range(40):
        task = make_task(project)
        left = "a" if number % 2 else "b"
        choice = left if number < 26 else ("b" if left == "a" else "a")
        for user in careful:
            Judgment.objects.create(task=task, annotator=user, choice=choice, left_side=rng.choice("ab"))
        Judgment.objects.create(task=task, annotator=alice, choice=choice, left_side=left)
    services.annotator_trust_refresh()
    stats = {s.username: s for s in selectors.annotator_stats(project=project)}
    assert stats["alice"].left_share == pytest.approx(0.65)
    assert stats["alice"].side_driven == 0.0
    assert not stats["alice"].flagged and stats["alice"].trust > 0.85


def test_it_ignores_ties_and_judgments_without_a_side(project):
    bob = make_user("bob")
    for _ in range(30):
        Judgment.objects.create(task=make_task(project), annotator=bob, choice="tie", left_side="a")
        Judgment.objects.create(task=make_task(project), annotator=bob, choice="a", left_side="")
    for _ in range(10):
        Judgment.objects.create(task=make_task(project), annotator=bob, choice="b", left_side="b")
    evidence = selectors.annotator_evidence(project=project)[bob.pk]
    assert (evidence.left, evidence.sided) == (10, 10)
    assert evidence.side_driven == 0.0
