"""Extension points between apps that must not import each other.

Collection does not know about curation (curation builds on collection), yet new text
should be curated as soon as it is committed. Curation registers a listener here in its
AppConfig.ready(); collection services announce new items after commit.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

_item_listeners: list[Callable[[int], None]] = []


def on_items_created(listener: Callable[[int], None]) -> None:
    if listener not in _item_listeners:
        _item_listeners.append(listener)


def items_created(*, project_id: int) -> None:
    """Tell listeners, once the surrounding transaction commits, that a project has new text."""

    def notify() -> None:
        for listener in _item_listeners:
            listener(project_id)

    transaction.on_commit(notify)
