"""Database helpers that the ORM does not give."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorWrapper


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

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold != 0:
        # Prepare on first use: these statements are few, and each runs thousands of times.
        raw.prepare_threshold = 0
    connection.validate_thread_sharing()
    cursor = ServerBindingCursor(raw)  # type: ignore[call-arg]
    # The same wrapping connection.cursor() gives: errors as django.db errors, query logging.
    wrap = connection.make_debug_cursor if connection.queries_logged else connection.make_cursor
    return wrap(cursor)  # type: ignore[arg-type]
