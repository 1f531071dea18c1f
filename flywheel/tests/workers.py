"""Real Celery worker processes for tests, pointed at the test database and a real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def worker_env(**extra: str) -> dict[str, str]:
    """The environment a worker needs to see exactly what the test sees."""
    db = connection.settings_dict
    env = dict(os.environ)
    env["DJANGO_ENV"] = "test"
    if connection.vendor == "postgresql":
        user = db.get("USER") or ""
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        auth = f"{user}{password}@" if user else ""
        env["DATABASE_URL"] = (
            f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
        )
    else:
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env["FLYWHEEL_DATA_DIR"] = str(settings.DATA_DIR)
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


@contextmanager
def celery_worker(
    *,
    queues: str = "default",
    name: str | None = None,
    env: dict[str, str] | None = None,
    pool: str = "solo",
    log: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `celery worker` as a subprocess, wait until it answers a ping, stop it after."""
    from flywheel.celery import app

    hostname = f"{name or 'test'}-{uuid.uuid4().hex[:6]}@localhost"
    out = log.open("wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "flywheel",
            "worker",
            "-Q",
            queues,
            "-P",
            pool,
            "-c",
            "1",
            "-n",
            hostname,
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env=env or worker_env(),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"celery worker exited with {proc.returncode} during start-up (log: {log})"
                )
            replies = app.control.ping(destination=[hostname], timeout=1.0)
            if replies:
                break
        else:
            raise RuntimeError(f"celery worker {hostname} did not answer within 60 s (log: {log})")
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def require_real_broker() -> None:
    import pytest

    if not settings.REDIS_URL:
        pytest.skip("real-worker tests need REDIS_URL (CI sets it); the embedded broker is single-host")
