"""Queues are named by the hardware they need, and every task name maps to one.

- default: light bookkeeping (lease expiry, trust refresh).
- curation: CPU work over text (dedup, rules, embeddings).
- training: GPU fine-tuning.
- inference: the process that holds the deployed models.
"""

from __future__ import annotations

from typing import Any

QUEUES = ("default", "curation", "training", "inference")

_PREFIX_QUEUE = {
    "feedback.": "default",
    "curation.": "curation",
    "training.": "training",
    "inference.": "inference",
    "workers.": "default",
    # The console's threshold preview replays duplicate detection: CPU work over signatures.
    "console.": "curation",
}


def queue_for(task_name: str) -> str:
    for prefix, queue in _PREFIX_QUEUE.items():
        if task_name.startswith(prefix):
            return queue
    return "default"


def route_task(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any
) -> dict[str, str]:
    return {"queue": queue_for(name)}
