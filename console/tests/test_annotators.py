"""Disabling an annotator and keeping their judgments out of snapshots; the suspicious-pattern flags."""

from __future__ import annotations

import pytest
from django.test import Client

from console import selectors, services
from feedback import metrics
from feedback import services as feedback_services
from feedback.metrics import POSITION_MIN_SIDED
from feedback.models import Assignment, AssignmentState, Judgment, Side
from feedback.selectors import annotator_stats
from feedback.tests.factories import make_task
from flywheel.errors import Conflict
from flywheel.models import AuditLog, User

pytestmark = pytest.mark.django_db


def test_it_disables_an_annotator_releases_their_leases_and_audits(project, alice, carol):
    make_task(project)
    lease = feedback_services.assignment_next(project=project, annotator=alice)
    assert lease is not None

    services.annotator_set_active(actor=carol, user=alice, active=False, reason="shares an account")

    alice.refresh_from_db()
    lease.refresh_from_db()
    assert not alice.is_active and lease.state == AssignmentState.EXPIRED
    entry = AuditLog.objects.get(action="user.set_active")
    assert (entry.actor, entry.target_id, entry.reason) == (carol, str(alice.pk), "shares an account")
    assert entry.before == {"is_active": True} and entry.after == {"is_active": False, "leases_released": 1}
    # A disabled account cannot sign in.
    assert not Client().login(username="alice", password="correct horse battery staple")

    services.annotator_set_active(actor=carol, user=alice, active=True, reason="sorted out")
    alice.refresh_from_db()
    assert alice.is_active
    assert Client().login(username="alice", password="correct horse battery staple")


def test_it_excludes_an_annotators_judgments_and_audits(alice, carol):
    services.annotator_set_excluded(actor=carol, user=alice, excluded=True, reason="always picks A")
    alice.refresh_from_db()
    assert alice.judgments_excluded
    entry = AuditLog.objects.get(action="user.exclude_judgments")
    assert entry.before == {"judgments_excluded": False} and entry.after == {"judgments_excluded": True}
    with pytest.raises(Conflict):
        services.annotator_set_excluded(actor=carol, user=alice, excluded=True, reason="again")


def test_it_manages_annotators_only(carol, dave):
    with pytest.raises(Conflict):
        services.annotator_set_active(actor=dave, user=carol, active=False, reason="no")
    with pytest.raises(Conflict):
        services.annotator_set_active(actor=carol, user=carol, active=False, reason="no")
    carol.refresh_from_db()
    assert carol.is_active
    assert not AuditLog.objects.exists()


def _judge(annotator, project, count: int, *, left: bool, seconds: float) -> None:  # type: ignore[no-untyped-def]
    for _ in range(count):
        task = make_task(project)
        side = Side.A
        Judgment.objects.create(
            task=task,
            annotator=annotator,
            choice="a" if left else "b",
            left_side=side,
            time_spent_ms=int(seconds * 1000),
        )


def test_it_flags_an_annotator_who_always_picks_one_side_or_rushes(project, alice, bob):
    _judge(alice, project, POSITION_MIN_SIDED, left=True, seconds=1.5)
    _judge(bob, project, 12, left=True, seconds=20)
    _judge(bob, project, 12, left=False, seconds=20)
    rows = {row.stats.username: row for row in selectors.annotator_rows(project=project)}
    assert rows["alice"].stats.left_share == 1.0 and rows["alice"].stats.sided == POSITION_MIN_SIDED
    assert rows["alice"].flags == ["picks the left side 100%", "median 1.5 s per comparison"]
    assert rows["bob"].stats.left_share == 0.5 and rows["bob"].flags == []
    assert rows["alice"].recent == POSITION_MIN_SIDED
    assert not Assignment.objects.exists()


def _sided(project, picks: dict[User, tuple[int, int]]) -> None:  # type: ignore[no-untyped-def]
    """Each user picks the left-hand response `left` times out of `sided`, on shared tasks (two
    votes a task give no majority to agree with, so trust evidence stays out of it)."""
    tasks = [make_task(project) for _ in range(max(sided for _, sided in picks.values()))]
    for user, (left, sided) in picks.items():
        for i, task in enumerate(tasks[:sided]):
            Judgment.objects.create(
                task=task, annotator=user, choice="a" if i < left else "b", left_side=Side.A
            )


def _side_flags(project) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    return {
        row.stats.username: [f for f in row.flags if f.startswith("picks the")]
        for row in selectors.annotator_rows(project=project)
    }


def test_it_flags_a_side_by_the_binomial_test_not_by_a_share(project, alice, bob):
    # 32 of 40 on the left (80 %, p = 0.0002) is beyond chance; 17 of 20 on the right (85 %,
    # p = 0.0026) is not. No cut-off on the share alone flags the first and spares the second.
    _sided(project, {alice: (32, 40), bob: (3, 20)})
    assert _side_flags(project) == {"alice": ["picks the left side 80%"], "bob": []}
    # The page flags exactly the people whose trust feedback discounts for it.
    stats = {s.username: s for s in annotator_stats(project=project)}
    assert stats["alice"].side_driven > 0 and stats["bob"].side_driven == 0


def test_it_takes_the_side_test_parameters_from_feedback(project, alice, bob, monkeypatch):
    monkeypatch.setattr(metrics, "POSITION_ALPHA", 0.01)
    _sided(project, {alice: (32, 40), bob: (3, 20)})
    assert _side_flags(project) == {"alice": ["picks the left side 80%"], "bob": ["picks the right side 85%"]}


def test_it_waits_for_enough_side_votes(project, alice):
    # 19 of 19 on the left is p = 0.000004, but the test says nothing under 20 choices.
    _sided(project, {alice: (POSITION_MIN_SIDED - 1, POSITION_MIN_SIDED - 1)})
    assert _side_flags(project)["alice"] == []
