"""Database helpers that the ORM does not give."""

from __future__ import annotations

import functools
from time import monotonic
from typing import TypeVar

from django.conf import settings
from django.db import connection, models
from django.db.backends.utils import CursorWrapper

M = TypeVar("M", bound=models.Model)

# PostgreSQL keeps a prepared statement's plan until the statistics of its tables change
# (ANALYZE). A plan made while a table was empty stays in use as the table grows when autovacuum
# is off or has not come round yet: in the annotation bench, with the judgment table analyzed
# empty and autovacuum off, next-task read every judgment on every call (6 judgments/s instead of
# 170). So each connection drops its prepared statements after a while, and they are planned anew
# against the tables as they are: first after PLAN_FIRST_AGE_SECONDS, then after twice the
# previous age, up to PLAN_MAX_AGE_SECONDS. A fresh install's tables grow fastest in their first
# seconds (from empty, a flat 30 s left a whole 20-second bench run on the empty-table plans, at
# twice PostgreSQL's CPU per judgment); replanning a few statements costs a few milliseconds.
PLAN_FIRST_AGE_SECONDS = 1.0
PLAN_MAX_AGE_SECONDS = 30.0


def prepared_cursor() -> CursorWrapper:
    """A cursor whose statements PostgreSQL parses and plans once per connection.

    Django binds parameters on the client (psycopg's ClientCursor) so that every ORM query
    works, and PostgreSQL then parses and plans each statement anew. The annotation hot path
    runs a few fixed statements for every judgment; for those, server-side binding with
    prepared statements cut PostgreSQL's CPU per judgment by about a third
    (docs/benchmarks.md). Only cursors made here prepare: psycopg's client-side cursors never
    do, whatever the connection's threshold. Elsewhere (SQLite, or with
    FLYWHEEL_PREPARED_STATEMENTS=0 behind a pooler that cannot keep prepared statements) it
    is an ordinary cursor.
    """
    if connection.vendor != "postgresql" or not settings.FLYWHEEL_PREPARED_STATEMENTS:
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor
    from psycopg.pq import TransactionStatus

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold != 0:
        # Prepare on first use: these statements are few, and each runs thousands of times.
        raw.prepare_threshold = 0
    now = monotonic()
    # (when the statements were planned, how long those plans may live)
    plans: tuple[float, float] | None = getattr(raw, "flywheel_plans", None)
    if plans is None:
        raw.flywheel_plans = (now, PLAN_FIRST_AGE_SECONDS)  # type: ignore[attr-defined]
    elif now - plans[0] > plans[1] and raw.info.transaction_status == TransactionStatus.IDLE:
        # Between transactions only: in a failed one this would raise psycopg's error, not
        # Django's. psycopg sees the command go by and forgets its statements too.
        raw.execute("DEALLOCATE ALL")
        # The plans PL/pgSQL functions cache (next-task's) are not prepared statements.
        raw.execute("DISCARD PLANS")
        raw.flywheel_plans = (now, min(plans[1] * 2, PLAN_MAX_AGE_SECONDS))  # type: ignore[attr-defined]
    connection.validate_thread_sharing()
    cursor = ServerBindingCursor(raw)  # type: ignore[call-arg]
    # The same wrapping connection.cursor() gives: errors as django.db errors, query logging.
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    return wrap(cursor)  # type: ignore[arg-type]


def is_row_id(value: int) -> bool:
    """Whether an id from a URL can name a row: beyond a bigint none can, and SQLite refuses
    such a parameter outright instead of finding nothing."""
    return 0 < value < 2**63


@functools.cache
def _row_sql(model: type[models.Model]) -> tuple[list[str], str]:
    columns = [field.attname for field in model._meta.concrete_fields]
    quote = connection.ops.quote_name
    key = quote(model._meta.pk.column or "id")
    sql = f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(model._meta.db_table)} WHERE {key} = %s"  # noqa: S608
    return columns, sql


def row_get(model: type[M], pk: int) -> M | None:
    """model.objects.filter(pk=pk).first() as one prepared statement, for hot paths.

    Building and compiling that queryset costs about as much CPU as the request around it.
    The instance is complete (every concrete field) and otherwise an ordinary one.
    """
    if not is_row_id(pk):
        return None
    columns, sql = _row_sql(model)
    with prepared_cursor() as cursor:
        cursor.execute(sql, [pk])
        row = cursor.fetchone()
    return None if row is None else model.from_db(connection.alias, columns, row)
