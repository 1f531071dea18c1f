"""flywheel.postgres: the health check notices a connection the server ended, without a round
trip for one it did not."""

from __future__ import annotations

import select
import time

import psycopg
import pytest
from django.core import signals
from django.db import connection
from django.db.backends.postgresql import base as django_postgres

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the backend is PostgreSQL's (DATABASE_URL)")
    assert connection.health_check_enabled, "DATABASE_URL's settings turn health checks on"


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def next_request() -> None:
    """What Django does as each request starts: the connection is checked before its next use."""
    signals.request_started.send(sender=None)


def wait_readable(failure: str) -> None:
    """Wait until the server has sent something to the idle connection."""
    fileno = connection.connection.fileno()
    deadline = time.monotonic() + 10
    while not select.select([fileno], [], [], 0.1)[0]:
        assert time.monotonic() < deadline, failure


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per time Django's own health check (its SELECT 1) ran."""
    calls: list[int] = []
    select_one = django_postgres.DatabaseWrapper.is_usable
    monkeypatch.setattr(
        django_postgres.DatabaseWrapper, "is_usable", lambda self: calls.append(1) or select_one(self)
    )
    return calls


def test_a_connection_the_server_ended_is_replaced_before_the_request_uses_it():
    pid = backend_pid()
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
    # The server says goodbye before it closes: the idle socket turns readable.
    wait_readable("the ended connection's socket never turned readable")

    next_request()
    assert backend_pid() != pid  # a new connection, not an error


def test_a_healthy_idle_connection_is_checked_without_a_round_trip(asked):
    pid = backend_pid()
    for _ in range(3):
        next_request()
        assert backend_pid() == pid
    assert asked == []


def test_a_connection_with_anything_to_read_is_asked(asked):
    pid = backend_pid()
    # A notification sent to an idle session: this test LISTENs on a channel of its own and is
    # notified by a second session, as the token cache is when a user or token changes.
    with connection.cursor() as cursor:
        cursor.execute("LISTEN flywheel_health")
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("NOTIFY flywheel_health")
    wait_readable("the notification never arrived")
    next_request()
    assert backend_pid() == pid  # still usable: SELECT 1 said so
    assert asked == [1]


def test_connections_end_at_spread_out_ages():
    # Threads that connect together must not all reconnect together: each connection's end is
    # drawn between half of CONN_MAX_AGE and all of it.
    max_age = connection.settings_dict["CONN_MAX_AGE"]
    assert max_age, "DATABASE_URL's settings give connections a maximum age"
    ages = []
    for _ in range(20):
        connection.close()
        before = time.monotonic()
        connection.ensure_connection()
        assert connection.close_at is not None
        ages.append(connection.close_at - before)
    assert all(max_age / 2 - 1 <= age <= max_age + 1 for age in ages), ages
    assert max(ages) - min(ages) > max_age / 10, ages
