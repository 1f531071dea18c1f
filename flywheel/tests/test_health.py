"""/healthz: what a load balancer or orchestrator probes, without signing in."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db.utils import OperationalError
from django.test import Client, override_settings

from flywheel import views

pytestmark = pytest.mark.django_db


def test_it_reports_database_and_broker_ok():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
    # A cached "ok" would hide an outage from the prober.
    assert "no-cache" in response["Cache-Control"]


@override_settings(REDIS_URL="redis://127.0.0.1:1/0")
def test_it_answers_503_when_the_broker_is_unreachable():
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error: ")


def test_it_answers_503_when_the_database_is_unreachable(monkeypatch):
    class DownConnection:
        def cursor(self) -> None:
            raise OperationalError("connection refused")

    monkeypatch.setattr(views, "connection", DownConnection())
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "error: OperationalError"


def test_the_suite_queues_apart_from_make_runs_workers():
    from django.conf import settings

    # Both use FLYWHEEL_DATA_DIR; a test's queued task must never reach a `make run` worker.
    assert settings.BROKER_DIR == settings.DATA_DIR / "broker-test"
    if not settings.REDIS_URL:
        assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"] == str(
            settings.BROKER_DIR / "queue"
        )
        assert settings.CELERY_RESULT_BACKEND.endswith("results-test")


def test_it_checks_the_embedded_broker_folder(tmp_path: Path):
    present = {"data_folder_in": str(tmp_path)}
    missing = {"data_folder_in": str(tmp_path / "gone")}
    with override_settings(REDIS_URL="", CELERY_BROKER_TRANSPORT_OPTIONS=present):
        assert Client().get("/healthz").status_code == 200
    with override_settings(REDIS_URL="", CELERY_BROKER_TRANSPORT_OPTIONS=missing):
        response = Client().get("/healthz")
        assert response.status_code == 503
        assert response.json()["checks"]["broker"] == "error: broker folder missing"
