from __future__ import annotations

import pytest

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
