from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from feedback import services
from feedback.tests.factories import make_project, make_user
from flywheel.models import Role, User

# Real-browser plumbing lives in flywheel/tests/browser.py so every app's UI tests share it.
from flywheel.tests.browser import browser_page  # noqa: F401


@pytest.fixture
def alice(db: None) -> User:
    return make_user("alice", Role.ANNOTATOR)


@pytest.fixture
def bob(db: None) -> User:
    return make_user("bob", Role.ANNOTATOR)


@pytest.fixture
def carol(db: None) -> User:
    return make_user("carol", Role.CURATOR)


@pytest.fixture
def dave(db: None) -> User:
    return make_user("dave", Role.ADMIN)


@pytest.fixture
def project(db: None):  # type: ignore[no-untyped-def]
    return make_project(name="Helpful assistant", guidelines="Prefer the **more helpful** answer.")


@pytest.fixture(params=["in one round trip", "stepwise"] if settings.USING_POSTGRES else ["stepwise"])
def lease_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Next-task both ways on PostgreSQL: the lease function, and the stepwise statements it is
    written from (which SQLite always takes, and PostgreSQL too while the function is missing)."""
    if request.param == "stepwise" and connection.vendor == "postgresql":
        monkeypatch.setattr(services, "lease_function", lambda: ("flywheel_lease_next_missing", ""))
    return str(request.param)
