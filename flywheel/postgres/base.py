"""Django's PostgreSQL backend, with a health check that needs no round trip when idle.

With CONN_HEALTH_CHECKS, Django checks a reused connection before its first query in each
request by sending SELECT 1: a round trip on every request, about a tenth of an annotation
request's database work (docs/benchmarks.md). A server that ends a connection (a restart, a
shutdown, pg_terminate_backend, idle_session_timeout) says so first: it sends an error message
and closes the socket, so the socket turns readable. While idle we expect nothing from the
server (Flywheel never LISTENs), so an idle connection whose socket has nothing to read is
taken as usable without asking; one with anything to read, or not idle, gets Django's SELECT 1.

What this does not notice is a server that vanished without a word (its host lost, a network
cut): SELECT 1 would then wait for the TCP timeout too, and the request fails either way.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg.pq import ConnStatus, TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        raw = self.connection
        if raw is None or raw.closed:
            return False
        if raw.pgconn.status == ConnStatus.OK and raw.info.transaction_status == TransactionStatus.IDLE:
            try:
                readable, _, _ = select.select([raw.fileno()], [], [], 0)
            except (OSError, ValueError):
                return False
            if not readable:
                return True
        return bool(super().is_usable())
