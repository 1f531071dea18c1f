"""Twenty annotators hammer one project at once; no task may ever exceed overlap_k."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, connections

from feedback import services
from feedback.models import Choice, Judgment
from feedback.tests.factories import make_project, make_task, make_user

ANNOTATORS = 20
TASKS = 30
K = 3


@pytest.mark.django_db(transaction=True)
def test_it_never_exceeds_k_judgments_under_20_concurrent_annotators():
    if connection.vendor != "postgresql":
        pytest.skip("row locking is what is under test; it needs PostgreSQL (DATABASE_URL)")
    project = make_project(overlap_k=K, gold_rate=0.0)
    tasks = [make_task(project, priority=i % 5) for i in range(TASKS)]
    users = [make_user(f"annotator{i}") for i in range(ANNOTATORS)]
    barrier = threading.Barrier(ANNOTATORS)
    failures: list[BaseException] = []

    def work(user_index: int) -> None:
        user = users[user_index]
        try:
            barrier.wait()
            while True:
                lease = services.assignment_next(project=project, annotator=user)
                if lease is None:
                    return
                services.comparison_submit(assignment=lease, annotator=user, choice=Choice.A)
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(ANNOTATORS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "an annotator thread hung"
    assert failures == []
    per_task = Counter(Judgment.objects.values_list("task_id", flat=True))
    assert max(per_task.values()) <= K
    # Every seat got filled: the locking refused extra judgments without starving anyone.
    assert sum(per_task.values()) == TASKS * K
    assert set(per_task) == {t.pk for t in tasks}
    # Nobody judged the same task twice.
    pairs = Counter(Judgment.objects.values_list("task_id", "annotator_id"))
    assert max(pairs.values()) == 1
