"""Production logs are JSON, one object per line, so a log shipper needs no parsing rules."""

from __future__ import annotations

import json

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
