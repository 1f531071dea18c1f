"""Next-task's one-round-trip form on PostgreSQL: installed by migrate, written from the
stepwise path's SQL, and never required (test_assignment runs every rule both ways)."""

from __future__ import annotations

import pytest
from django.db import connection

from feedback import services
from feedback.tests.factories import make_task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the lease function is PostgreSQL's (DATABASE_URL)")


def test_the_lease_function_is_installed_by_migrate():
    name, _ = services.lease_function()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM pg_proc WHERE proname = %s", [name])
        assert cursor.fetchone() == (1,)


def test_a_missing_lease_function_falls_back_to_the_stepwise_path(project, alice, monkeypatch, caplog):
    monkeypatch.setattr(services, "lease_function", lambda: ("flywheel_lease_next_missing", ""))
    task = make_task(project)
    with caplog.at_level("WARNING", logger="feedback.services"):
        lease = services.assignment_next(project=project, annotator=alice)
    assert lease is not None and lease.task_id == task.pk
    assert "flywheel_lease_next_missing is missing (run migrate)" in caplog.text


def test_the_function_is_named_by_its_text():
    name, create = services.lease_function()
    assert name in create and name.startswith("flywheel_lease_next_")
    # Written from the stepwise path's SQL: the candidate's seat check is the same text.
    assert "t.wants_judgments AND t.judgment_count + (SELECT COUNT(*) FILTER" in create


def test_migrate_drops_functions_written_from_older_sql():
    older = "flywheel_lease_next_000000000000"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE FUNCTION {older}(p_project bigint) RETURNS integer LANGUAGE sql AS 'SELECT 1'"
        )
    services.lease_function_install()
    name, _ = services.lease_function()
    with connection.cursor() as cursor:
        cursor.execute("SELECT proname FROM pg_proc WHERE proname LIKE 'flywheel_lease_next_%%'")
        assert [row[0] for row in cursor.fetchall()] == [name]
