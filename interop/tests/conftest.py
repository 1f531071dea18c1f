from __future__ import annotations

import pytest

from feedback.models import Project
from feedback.tests.factories import make_project, make_user
from flywheel.models import Role, User

# A real Label Studio server, started once per session (interop/tests/label_studio.py).
from interop.tests.label_studio import label_studio_server  # noqa: F401


@pytest.fixture
def alice(db: None) -> User:
    return make_user("alice", Role.ANNOTATOR, email="alice@example.com")


@pytest.fixture
def bob(db: None) -> User:
    return make_user("bob", Role.ANNOTATOR, email="bob@example.com")


@pytest.fixture
def carol(db: None) -> User:
    return make_user("carol", Role.CURATOR)


@pytest.fixture
def dave(db: None) -> User:
    return make_user("dave", Role.ADMIN)


@pytest.fixture
def project(db: None) -> Project:
    return make_project(name="Source")


@pytest.fixture
def fresh(db: None) -> Project:
    return make_project(name="Fresh")
