from __future__ import annotations

import pytest

from feedback import selectors, services
from feedback.models import Judgment
from feedback.tests.factories import make_task, make_user

pytestmark = pytest.mark.django_db


def test_it_lowers_a_careless_annotators_trust_and_flags_them(project):
    careful = [make_user(f"careful{i}") for i in range(3)]
    careless = make_user("careless")
    for _ in range(6):
        gold = make_task(project, is_gold=True, gold_answer="a")
        for user in careful:
            Judgment.objects.create(task=gold, annotator=user, choice="a", time_spent_ms=20_000)
        Judgment.objects.create(task=gold, annotator=careless, choice="b", time_spent_ms=900)
    for _ in range(6):
        task = make_task(project)
        for user in careful:
            Judgment.objects.create(task=task, annotator=user, choice="b", time_spent_ms=15_000)
        Judgment.objects.create(task=task, annotator=careless, choice="a", time_spent_ms=800)
    services.annotator_trust_refresh()
    stats = {s.username: s for s in selectors.annotator_stats(project=project)}
    assert stats["careless"].gold_accuracy == 0.0 and stats["careless"].agreement == 0.0
    assert stats["careless"].flagged and stats["careless"].trust < 0.3
    assert stats["careless"].median_seconds == pytest.approx(0.85)
    assert all(not stats[u.username].flagged and stats[u.username].trust > 0.85 for u in careful)
    # Downstream, the careless votes barely count.
    task = make_task(project)
    Judgment.objects.create(task=task, annotator=careful[0], choice="a")
    Judgment.objects.create(task=task, annotator=careless, choice="b")
    preference = next(p for p in selectors.aggregated_preferences(project=project) if p.task.pk == task.pk)
    assert preference.aggregate.winner == "a"


def test_it_reports_project_agreement(project):
    users = [make_user(f"u{i}") for i in range(3)]
    for choice in ("a", "b", "a", "tie"):
        task = make_task(project)
        for user in users:
            Judgment.objects.create(task=task, annotator=user, choice=choice)
    assert selectors.project_agreement(project=project) == pytest.approx(1.0)
