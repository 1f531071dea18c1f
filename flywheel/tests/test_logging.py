"""Production logs are JSON, one object per line, so a log shipper needs no parsing rules."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid

import pytest
from django.conf import settings

from flywheel.tests.test_settings import production_env, run

SCRIPT = """
import logging
import django
django.setup()
log = logging.getLogger("flywheel.deploy_test")
log.info("judgment %s recorded", 7, extra={"project": 3, "annotator": "alice"})
log.warning("a message\\nover two lines")
try:
    raise ValueError("boom")
except ValueError:
    log.exception("curation batch failed")
"""


def test_it_writes_one_json_object_per_line_in_production(tmp_path):
    result = run(tmp_path, production_env(), "-c", SCRIPT)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    mine = [r for r in records if r["logger"] == "flywheel.deploy_test"]
    assert len(mine) == 3, lines
    first, second, third = mine
    assert first["message"] == "judgment 7 recorded"
    assert (first["level"], first["project"], first["annotator"]) == ("info", 3, "alice")
    assert first["ts"].endswith("+00:00")
    # A newline in a message or a traceback stays inside the one line.
    assert second["message"] == "a message\nover two lines"
    assert third["level"] == "error" and "ValueError: boom" in third["exc"]


def test_it_logs_plain_text_outside_production(tmp_path):
    # The control: the same script in development is not JSON, so the test above can fail.
    result = run(tmp_path, {}, "-c", SCRIPT)
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(line for line in result.stderr.splitlines() if "judgment 7 recorded" in line)
    assert not line.startswith("{")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_logs_json_from_a_celery_worker_in_production(tmp_path):
    from flywheel.tests.workers import require_real_broker, worker_env

    require_real_broker()
    env = worker_env() | production_env() | {"FLYWHEEL_DATA_DIR": str(tmp_path)}
    env["DATABASE_URL"] = worker_env()["DATABASE_URL"]
    # A queue of its own, so it takes no other test's tasks.
    queue = f"logging-test-{uuid.uuid4().hex[:8]}"
    argv = ["celery", "-A", "flywheel", "worker", "--queues", queue, "--concurrency", "1"]
    argv += ["--hostname", f"{queue}@%h", "--loglevel", "INFO"]
    worker = subprocess.Popen(
        [sys.executable, "-m", *argv],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        assert worker.stderr is not None
        while time.monotonic() < deadline:
            line = worker.stderr.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if " ready." in line:
                break
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    ready = [line for line in lines if " ready." in line]
    assert ready, "\n".join(lines[-20:])
    assert json.loads(ready[0])["logger"] == "celery.apps.worker"
    # Celery's own format, "[2026-01-01 00:00:00,000: INFO/MainProcess] ...", must not appear.
    assert not [line for line in lines if re.match(r"\[\d{4}-\d\d-\d\d ", line)]
