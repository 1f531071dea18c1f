"""ComparisonTask.judgment_count, which next-task filters on, is kept by database triggers: it
must match the judgments themselves whoever writes or deletes them."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from feedback import services
from feedback.models import Choice, ComparisonTask, Judgment
from feedback.tests.factories import make_task, make_user
from feedback.tests.test_api import client_for, next_task, submit_url

pytestmark = pytest.mark.django_db


def counted(task: ComparisonTask) -> int:
    task.refresh_from_db(fields=["judgment_count", "wants_judgments"])
    assert task.judgment_count == Judgment.objects.filter(task=task).count()
    assert task.wants_judgments == (task.judgment_count < task.project.overlap_k)
    return task.judgment_count


def test_it_counts_judgments_from_every_writer(project, alice, bob, carol):
    task = make_task(project)
    lease = services.assignment_next(project=project, annotator=alice)
    assert lease is not None
    services.comparison_submit(assignment=lease, annotator=alice, choice=Choice.A)
    assert counted(task) == 1
    services.judgment_import(task=task, annotator=bob, choice=Choice.B, external_id="ext-1")
    assert counted(task) == 2
    Judgment.objects.create(task=task, annotator=carol, choice=Choice.TIE)
    assert counted(task) == 3


def test_it_uncounts_deleted_and_moved_judgments(project, alice, bob):
    task, other = make_task(project), make_task(project)
    Judgment.objects.create(task=task, annotator=alice, choice=Choice.A)
    moved = Judgment.objects.create(task=task, annotator=bob, choice=Choice.B)
    moved.task = other
    moved.save()
    assert (counted(task), counted(other)) == (1, 1)
    # Deleting an account deletes its judgments by cascade, not through a service.
    alice.delete()
    assert (counted(task), counted(other)) == (0, 1)


def test_it_serves_a_task_again_after_a_judgment_is_deleted(project, alice, bob):
    project.overlap_k = 1
    project.save()
    make_task(project)
    lease = services.assignment_next(project=project, annotator=alice)
    assert lease is not None
    judgment, _ = services.comparison_submit(assignment=lease, annotator=alice, choice=Choice.A)
    assert services.assignment_next(project=project, annotator=bob) is None
    judgment.delete()
    assert services.assignment_next(project=project, annotator=bob) is not None


def test_it_follows_a_change_of_overlap(project, alice, bob, carol):
    project.overlap_k = 2
    project.save()
    task = make_task(project)
    Judgment.objects.create(task=task, annotator=alice, choice=Choice.A)
    Judgment.objects.create(task=task, annotator=bob, choice=Choice.B)
    assert counted(task) == 2 and not task.wants_judgments
    assert services.assignment_next(project=project, annotator=carol) is None
    # Raised anywhere (here a plain save, as the admin does), the task wants a third judgment.
    project.overlap_k = 3
    project.save()
    assert counted(task) == 2 and task.wants_judgments
    assert services.assignment_next(project=project, annotator=carol) is not None
    project.overlap_k = 1
    project.save()
    assert counted(task) == 2 and not task.wants_judgments


def test_it_keeps_next_task_and_submit_to_a_few_statements(project):
    """The hot path's statement count is its cost: a change that adds queries shows here."""
    make_task(project)
    annotator = make_user("erin")
    client = client_for(annotator)
    with CaptureQueriesContext(connection) as next_queries:
        payload = next_task(client, project)
    with CaptureQueriesContext(connection) as submit_queries:
        response = client.post(submit_url(payload["assignment_id"]), {"choice": "a"}, format="json")
    assert response.status_code == 201, response.content
    # next-task: token, project, then on PostgreSQL one call of the lease function (elsewhere:
    # held lease, candidate, insert with its seat check), plus the savepoints of the test's
    # transaction; submit: token, then on PostgreSQL one statement that locks, inserts and closes
    # (elsewhere: locked lease, insert, close).
    # (Django cannot show the SQL of a prepared statement: it logs None.)
    postgres = connection.vendor == "postgresql"
    statements = [q["sql"] for q in next_queries.captured_queries if "SAVEPOINT" not in (q["sql"] or "")]
    assert len(statements) <= (3 if postgres else 5), statements
    statements = [q["sql"] for q in submit_queries.captured_queries if "SAVEPOINT" not in (q["sql"] or "")]
    assert len(statements) <= (2 if postgres else 4), statements

    # Submit with "next": true takes the project from the submit's own statement: on PostgreSQL,
    # token, submit and the lease function; elsewhere the project is read again.
    make_task(project)
    make_task(project)
    payload = next_task(client, project)
    with CaptureQueriesContext(connection) as both_queries:
        response = client.post(
            submit_url(payload["assignment_id"]), {"choice": "b", "next": True}, format="json"
        )
    assert response.status_code == 201 and response.json()["next"] is not None, response.content
    statements = [q["sql"] for q in both_queries.captured_queries if "SAVEPOINT" not in (q["sql"] or "")]
    assert len(statements) <= (3 if postgres else 9), statements


def test_a_judgment_deleted_after_its_project_closes_its_task_instead_of_failing(project, alice):
    # Django's flush deletes table by table with the foreign keys' checks deferred, so a
    # project's row can go before its judgments'. The trigger must not write NULL then: with
    # no project, no judgments are wanted.
    task = make_task(project)
    judgment = Judgment.objects.create(task=task, annotator=alice, choice=Choice.A)
    with pytest.raises(RuntimeError, match="roll back"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM feedback_project WHERE id = %s", [project.pk])
        cursor.execute("DELETE FROM feedback_judgment WHERE id = %s", [judgment.pk])
        cursor.execute(
            "SELECT judgment_count, wants_judgments FROM feedback_comparisontask WHERE id = %s", [task.pk]
        )
        assert cursor.fetchone() == (0, False)
        raise RuntimeError("roll back: the rows without their project must not be committed")
