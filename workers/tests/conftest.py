from __future__ import annotations

import pytest

# The tiny models are built once per session by the training tests' fixtures.
from training.tests.conftest import (  # noqa: F401
    make_reward_config,
    make_sft_config,
    snapshot_dir,
    tiny_encoder,
    tiny_lm,
)


@pytest.fixture
def empty_queues():  # type: ignore[no-untyped-def]
    """Tests that start runs enqueue real messages; drop them so no later worker picks them up."""
    from django.conf import settings

    from flywheel.celery import app
    from workers.routing import QUEUES

    def purge() -> None:
        if not settings.REDIS_URL:
            return
        with app.connection_for_write() as conn:
            for queue in QUEUES:
                conn.default_channel.queue_purge(queue)

    purge()
    yield
    purge()


@pytest.fixture(autouse=True)
def _no_loaded_models():  # type: ignore[no-untyped-def]
    """Each test starts and ends with an empty inference slot table and no watcher thread."""
    from training.inference import SLOTS

    SLOTS.reset()
    yield
    SLOTS.reset()
