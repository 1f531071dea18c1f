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

    # Past the plans' age the connection drops its statements before the next one runs, but
    # not inside a transaction that has begun...
    monkeypatch.setattr(db, "PLAN_FIRST_AGE_SECONDS", -1.0)
    monkeypatch.setattr(db, "PLAN_MAX_AGE_SECONDS", -1.0)
    connection.close()  # a new connection, whose plans are always past their age
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


@pytest.mark.django_db(transaction=True)
def test_plans_live_twice_as_long_each_time_up_to_the_most(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (DATABASE_URL)")
    clock = Clock()
    monkeypatch.setattr(db, "monotonic", clock)
    connection.close()
    assert ask() == 42
    ages = []
    for _ in range(8):
        # Step the clock a tenth of a second at a time until the statement is dropped.
        planned = clock.now
        while prepared():
            clock.now += 0.1
            with db.prepared_cursor():
                pass
        ages.append(round(clock.now - planned))
        ask()
    first, most = db.PLAN_FIRST_AGE_SECONDS, db.PLAN_MAX_AGE_SECONDS
    assert ages == [round(min(first * 2**i, most)) for i in range(8)]
    assert ages[-1] == most, "the age stops growing at PLAN_MAX_AGE_SECONDS"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
