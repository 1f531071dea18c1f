"""Disabling an annotator and keeping their judgments out of snapshots; the suspicious-pattern flags."""

from __future__ import annotations

import pytest
from django.test import Client

from console import selectors, services
from feedback import services as feedback_services
from feedback.models import Assignment, AssignmentState, Judgment, Side
from feedback.tests.factories import make_task
from flywheel.errors import Conflict
from flywheel.models import AuditLog

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
    _judge(alice, project, selectors.SAME_SIDE_MIN_VOTES, left=True, seconds=1.5)
    _judge(bob, project, 12, left=True, seconds=20)
    _judge(bob, project, 12, left=False, seconds=20)
    rows = {row.stats.username: row for row in selectors.annotator_rows(project=project)}
    assert rows["alice"].left_share == 1.0
    assert rows["alice"].flags == ["picks the left side 100%", "median 1.5 s per comparison"]
    assert rows["bob"].left_share == 0.5 and rows["bob"].flags == []
    assert rows["alice"].recent == selectors.SAME_SIDE_MIN_VOTES
    assert not Assignment.objects.exists()
