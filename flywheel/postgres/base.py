"""Django's PostgreSQL backend, with a health check that needs no round trip when idle, and a
per-connection cache of API tokens that the database itself invalidates.

With CONN_HEALTH_CHECKS, Django checks a reused connection before its first query in each
request by sending SELECT 1: a round trip on every request, about a tenth of an annotation
request's database work (docs/benchmarks.md). A server that ends a connection (a restart, a
shutdown, pg_terminate_backend, idle_session_timeout) says so first: it sends an error message
and closes the socket, so the socket turns readable. While idle the only other thing the server
sends is a notification on a channel the connection LISTENs on (the token cache's, below). So
an idle connection whose socket has nothing to read is taken as usable without asking; one with
anything to read, or not idle, gets Django's SELECT 1, which also takes the notifications in.

What this does not notice is a server that vanished without a word (its host lost, a network
cut): SELECT 1 would then wait for the TCP timeout too, and the request fails either way.

The token cache. Every API request reads its token and user: a round trip, and a third of the
annotation hot path's statements. A connection that caches them first LISTENs on
AUTH_CHANNEL; a trigger (migration flywheel 0002) notifies that channel whenever a user or a
token row is updated, deleted or truncated, by any process, through the ORM or raw SQL. A cached
row is used only while the connection is idle and its socket has nothing to read, that is while
no notification has arrived since the row was read; any notification empties the cache. A row
read while a notification came in is not kept (`auth_changes`), since it may predate the change.
So a disabled account or a deleted token is refused from the first request that starts after
the change's notification has reached the connection: on one host, well under a millisecond
after the commit.

Connection lifetimes are spread. A web worker's threads open their connections together (at
startup, or after the database restarted), so with CONN_MAX_AGE as a fixed age they would also
all reconnect together, and every request in flight would wait behind a burst of new
connections, each starting with a cold token cache and no plans: a stall of up to a third of a
second every CONN_MAX_AGE seconds under load (docs/benchmarks.md, session 7). So each
connection ends after a random age between half of CONN_MAX_AGE and CONN_MAX_AGE.
"""

from __future__ import annotations

import logging
import random
import select
import time
from typing import Any

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base
from psycopg import Notify
from psycopg.pq import ConnStatus, TransactionStatus

logger = logging.getLogger(__name__)

AUTH_CHANNEL = "flywheel_auth"
# Tokens kept per connection; beyond that the cache starts over (each entry is one user row).
AUTH_CACHE_SIZE = 10_000
# The connections' ages are drawn from this, not from the global generator, which seeded
# simulations replay.
_AGES = random.Random()


class DatabaseWrapper(base.DatabaseWrapper):
    # token key -> its user's row, for this connection (None: not listening, nothing cached)
    auth_rows: dict[str, tuple[Any, ...]] | None = None
    # Notifications on AUTH_CHANNEL taken in by this connection so far.
    auth_changes = 0
    # This connection's LISTEN failed: it reads every token, and does not try again.
    auth_unavailable = False

    def connect(self) -> None:
        super().connect()
        max_age = self.settings_dict["CONN_MAX_AGE"]
        if self.close_at is not None and max_age:
            self.close_at = time.monotonic() + max_age * _AGES.uniform(0.5, 1.0)

    def init_connection_state(self) -> None:
        super().init_connection_state()
        # A new connection has heard nothing yet: it listens before it caches.
        self.auth_rows = None
        self.auth_changes = 0
        self.auth_unavailable = False

    def _idle_and_quiet(self) -> bool | None:
        """True: idle with nothing to read. False: something to read. None: not idle, or broken."""
        raw = self.connection
        if raw is None or raw.closed:
            return None
        if raw.pgconn.status != ConnStatus.OK or raw.info.transaction_status != TransactionStatus.IDLE:
            return None
        try:
            # poll, not select: select cannot watch a descriptor numbered 1024 or above.
            poller = select.poll()
            poller.register(raw.fileno(), select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return None

    def is_usable(self) -> bool:
        if self._idle_and_quiet():
            return True
        if self.connection is None or self.connection.closed:
            return False
        return bool(super().is_usable())

    # --- The token cache (flywheel.authentication) ----------------------------------------------

    def auth_cache(self) -> dict[str, tuple[Any, ...]] | None:
        """The cached token rows when they can be trusted now; None: read the database."""
        if self.auth_rows is None or not self._idle_and_quiet():
            return None
        return self.auth_rows

    def auth_cache_start(self) -> int | None:
        """Before reading a token: listen, if this connection does not yet. Returns the count of
        notifications to hand to auth_cache_keep after the read, or None: do not cache."""
        if not settings.FLYWHEEL_TOKEN_CACHE or self.auth_unavailable:
            return None
        # As before any query of a request: a connection the server ended is replaced first.
        self.close_if_health_check_failed()
        self.ensure_connection()
        if self.auth_rows is None:
            if self.connection.info.transaction_status != TransactionStatus.IDLE:
                return None  # LISTEN inside a transaction would wait for its commit
            try:
                with self.connection.cursor() as cursor:
                    cursor.execute(f"LISTEN {AUTH_CHANNEL}")
            except psycopg.Error as exc:
                # A server that cannot LISTEN (a hot standby, say): read every token instead.
                logger.warning(
                    "Token cache off for this connection: LISTEN failed: %s"
                    " (FLYWHEEL_TOKEN_CACHE=0 stops trying)",
                    exc,
                )
                self.auth_unavailable = True
                return None
            self.connection.add_notify_handler(self._auth_notified)
            self.auth_rows = {}
        return self.auth_changes

    def auth_cache_keep(self, key: str, row: tuple[Any, ...], changes: int | None) -> None:
        """Keep a row read after auth_cache_start, unless a change came in meanwhile."""
        rows = self.auth_rows
        if rows is None or changes is None or changes != self.auth_changes:
            return
        if self.connection.info.transaction_status != TransactionStatus.IDLE:
            return  # read inside a transaction: it may hold the transaction's own writes
        if len(rows) >= AUTH_CACHE_SIZE:
            rows.clear()
        rows[key] = row

    def _auth_notified(self, notify: Notify) -> None:
        if notify.channel == AUTH_CHANNEL:
            self.auth_changes += 1
            if self.auth_rows is not None:
                self.auth_rows.clear()
