"""flywheel.db: prepared statements for the hot paths, and how long their plans live."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from flywheel import db


def prepared() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


def ask() -> int:
    with db.prepared_cursor() as cursor:
        cursor.execute("SELECT %s::int + 1", [41])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_statements_are_prepared_once_and_planned_anew_after_a_while(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (DATABASE_URL)")
    before = prepared()
    assert ask() == 42
    ours = prepared() - before
    assert len(ours) == 1
    assert ask() == 42
    assert prepared() - before == ours, "the statement was prepared again instead of reused"

    # Past the plan's age the connection drops its statements before the next one runs, but
    # not inside a transaction that has begun...
    monkeypatch.setattr(db, "PLAN_MAX_AGE_SECONDS", -1.0)
    with transaction.atomic():
        assert ask() == 42
        inside = prepared()
        assert ask() == 42
        assert prepared() == inside
    with db.prepared_cursor():
        pass
    assert prepared() == set()
    # ...and psycopg knows: it prepares again rather than name a statement that is gone.
    assert ask() == 42
    assert len(prepared()) == 1
