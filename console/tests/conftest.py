from __future__ import annotations

from collections.abc import Iterator

import pytest

from feedback.tests.conftest import alice, bob, carol, dave, project

# Real-browser plumbing lives in flywheel/tests/browser.py so every app's UI tests share it.
from flywheel.tests.browser import browser_page

# The cast and a demo project come from feedback's conftest so every app's tests share them.
__all__ = ["alice", "bob", "browser_page", "carol", "dave", "project"]


@pytest.fixture(autouse=True)
def _fresh_index_cache() -> Iterator[None]:
    """Each test starts with no in-process LSH index, as a fresh worker would."""
    from curation.services import INDEXES

    INDEXES._memory.clear()
    yield
    INDEXES._memory.clear()


@pytest.fixture(autouse=True)
def _exports_in_tmp(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.EXPORT_DIR = tmp_path / "exports"


@pytest.fixture(autouse=True)
def _no_preview_warm_tasks(monkeypatch):  # type: ignore[no-untyped-def]
    """Opening the thresholds page queues a Celery task; no worker runs here to take it."""
    from console import tasks

    monkeypatch.setattr(tasks.preview_warm, "delay", lambda project_id: None)
