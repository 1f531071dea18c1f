from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from feedback import services
from feedback.models import Assignment, AssignmentState, Choice
from feedback.tests.factories import make_task, make_user
from flywheel.errors import Conflict, PermissionDeniedError

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("lease_path")]


def test_it_leases_the_highest_priority_task_first(project, alice):
    make_task(project, priority=1)
    top = make_task(project, priority=5)
    assignment = services.assignment_next(project=project, annotator=alice)
    assert assignment is not None and assignment.task_id == top.pk


def test_it_returns_the_same_live_lease_on_reload(project, alice):
    make_task(project)
    make_task(project)
    first = services.assignment_next(project=project, annotator=alice)
    again = services.assignment_next(project=project, annotator=alice)
    assert first is not None and again is not None and first.pk == again.pk


def test_it_stops_at_k_judgments_plus_leases(project, alice, bob):
    project.overlap_k = 1
    project.save()
    make_task(project)
    assert services.assignment_next(project=project, annotator=alice) is not None
    # alice's live lease takes the only seat.
    assert services.assignment_next(project=project, annotator=bob) is None


def test_it_returns_expired_leases_to_the_pool(project, alice, bob):
    project.overlap_k = 1
    project.save()
    make_task(project)
    lease = services.assignment_next(project=project, annotator=alice)
    assert lease is not None
    later = timezone.now() + timedelta(seconds=project.lease_seconds + 1)
    assert services.leases_expire(now=later) == 1
    lease.refresh_from_db()
    assert lease.state == AssignmentState.EXPIRED
    assert services.assignment_next(project=project, annotator=bob, now=later) is not None


def test_it_accepts_a_late_submit_while_the_task_has_room(project, alice):
    make_task(project)
    lease = services.assignment_next(project=project, annotator=alice)
    assert lease is not None
    later = timezone.now() + timedelta(hours=1)
    judgment, created = services.comparison_submit(
        assignment=lease, annotator=alice, choice=Choice.A, now=later
    )
    assert created and judgment.choice == Choice.A


def test_it_refuses_a_late_submit_when_the_task_filled_up(project, alice, bob):
    project.overlap_k = 1
    project.save()
    make_task(project)
    lease = services.assignment_next(project=project, annotator=alice)
    assert lease is not None
    later = timezone.now() + timedelta(seconds=project.lease_seconds + 5)
    bob_lease = services.assignment_next(project=project, annotator=bob, now=later)
    assert bob_lease is not None
    services.comparison_submit(assignment=bob_lease, annotator=bob, choice=Choice.B, now=later)
    with pytest.raises(Conflict) as excinfo:
        services.comparison_submit(
            assignment=lease, annotator=alice, choice=Choice.A, rationale="mine", now=later
        )
    assert excinfo.value.code == "task_full"


def test_it_returns_the_same_judgment_for_a_repeated_idempotency_key(project, alice):
    make_task(project)
    lease = services.assignment_next(project=project, annotator=alice)
    assert lease is not None
    first, created = services.comparison_submit(
        assignment=lease, annotator=alice, choice=Choice.A, idempotency_key="k1"
    )
    again, created_again = services.comparison_submit(
        assignment=lease, annotator=alice, choice=Choice.A, idempotency_key="k1"
    )
    assert created and not created_again and first.pk == again.pk


def test_it_refuses_another_annotators_assignment(project, alice, bob):
    make_task(project)
    lease = services.assignment_next(project=project, annotator=alice)
    assert lease is not None
    with pytest.raises(PermissionDeniedError):
        services.comparison_submit(assignment=lease, annotator=bob, choice=Choice.A)


def test_it_mixes_in_gold_at_the_project_rate(project, alice):
    project.gold_rate = 1.0
    project.save()
    make_task(project, priority=10)
    gold = make_task(project, is_gold=True, gold_answer=Choice.B)
    lease = services.assignment_next(project=project, annotator=alice)
    assert lease is not None and lease.task_id == gold.pk


def test_it_never_serves_a_skipped_task_again(project, alice):
    task = make_task(project)
    lease = services.assignment_next(project=project, annotator=alice)
    assert lease is not None and lease.task_id == task.pk
    services.assignment_skip(assignment=lease, annotator=alice, reason="Unclear prompt")
    assert services.assignment_next(project=project, annotator=alice) is None


def test_it_refuses_a_disabled_annotator(project):
    eve = make_user("eve", is_active=False)
    make_task(project)
    with pytest.raises(PermissionDeniedError):
        services.assignment_next(project=project, annotator=eve)


def test_a_lease_comes_with_its_texts_and_a_side(project, alice):
    task = make_task(project)
    lease = services.assignment_next(project=project, annotator=alice)
    assert lease is not None
    stored = Assignment.objects.get(pk=lease.pk)
    assert (lease.task_id, lease.annotator_id, lease.state) == (task.pk, alice.pk, AssignmentState.ACTIVE)
    assert lease.left_side == stored.left_side and lease.left_side in ("a", "b")
    assert lease.expires_at == stored.expires_at
    assert lease.expires_at - lease.leased_at == timedelta(seconds=project.lease_seconds)
    assert lease.task.prompt.text == task.prompt.text
    assert (lease.task.response_a.text, lease.task.response_b.text) == (
        task.response_a.text,
        task.response_b.text,
    )


def test_a_lapsed_lease_still_marked_active_is_closed_and_a_new_one_given(project, alice):
    make_task(project, priority=2)
    second = make_task(project, priority=1)
    first_lease = services.assignment_next(project=project, annotator=alice)
    assert first_lease is not None
    later = first_lease.expires_at + timedelta(seconds=1)
    lease = services.assignment_next(project=project, annotator=alice, now=later)
    first_lease.refresh_from_db()
    assert first_lease.state == AssignmentState.EXPIRED and first_lease.closed_at == later
    # The lapsed task is open again, and it comes first by priority.
    assert lease is not None and lease.task_id == first_lease.task_id and lease.pk != first_lease.pk
    assert Assignment.objects.filter(annotator=alice, state=AssignmentState.ACTIVE).count() == 1
    assert second.pk != lease.task_id


def test_gold_tasks_fill_in_when_no_ordinary_task_is_left(project, alice):
    project.gold_rate = 0.0
    project.save()
    gold = make_task(project, is_gold=True, gold_answer=Choice.A)
    lease = services.assignment_next(project=project, annotator=alice)
    assert lease is not None and lease.task_id == gold.pk and lease.task.is_gold
