from __future__ import annotations

import pytest

from feedback.tests.conftest import alice, bob, carol, dave, project

# The cast and a demo project come from feedback's conftest so every app's tests share them.
__all__ = ["alice", "bob", "carol", "dave", "project"]


@pytest.fixture(autouse=True)
def _fresh_index_cache():
    """Each test starts with no in-process LSH index, as a fresh worker would."""
    from curation.services import INDEXES

    INDEXES._memory.clear()
    yield
    INDEXES._memory.clear()
