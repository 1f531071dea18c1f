"""Twenty annotators hammer one project at once; no task may ever exceed overlap_k."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, connections, transaction

from feedback import services
from feedback.models import Choice, ComparisonTask, Judgment
from feedback.tests.factories import make_project, make_task, make_user
from flywheel.errors import Conflict

ANNOTATORS = 20
TASKS = 30
K = 3


@pytest.mark.django_db(transaction=True)
def test_it_never_exceeds_k_judgments_under_20_concurrent_annotators(lease_path):
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


@pytest.mark.django_db(transaction=True)
def test_a_judgment_submitted_twice_at_once_is_recorded_once():
    """A double click, or a client retrying before the first answer: the same lease submitted
    by two requests at the same moment. One judgment is recorded; the same key gets it back,
    another key is told the comparison is already judged; neither request fails."""
    if connection.vendor != "postgresql":
        pytest.skip("two connections racing is what is under test; it needs PostgreSQL (DATABASE_URL)")
    project = make_project(overlap_k=K, gold_rate=0.0)
    rounds = 16
    for _ in range(rounds):
        make_task(project)
    user = make_user("doubleclicker")
    outcomes: list[tuple[int, str]] = []
    failures: list[BaseException] = []

    def submit(barrier: threading.Barrier, lease_id: int, key: str) -> None:
        try:
            barrier.wait()
            judgment, created = services.comparison_submit(
                assignment=lease_id, annotator=user, choice=Choice.A, idempotency_key=key
            )
            outcomes.append((judgment.pk, "created" if created else "replayed"))
        except Conflict as exc:
            outcomes.append((0, exc.code))
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            failures.append(exc)
        finally:
            connections.close_all()

    for round_index in range(rounds):
        lease = services.assignment_next(project=project, annotator=user)
        assert lease is not None
        retry = round_index % 2 == 1  # the same key twice; otherwise two different keys
        keys = [f"key-{round_index}"] * 2 if retry else [f"first-{round_index}", f"second-{round_index}"]
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=submit, args=(barrier, lease.pk, key)) for key in keys]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert failures == []
        kinds = sorted(kind for _, kind in outcomes)
        assert kinds == (["created", "replayed"] if retry else ["already_judged", "created"]), outcomes
        if retry:
            assert outcomes[0][0] == outcomes[1][0]
        outcomes.clear()
    per_task = Counter(Judgment.objects.values_list("task_id", flat=True))
    assert sum(per_task.values()) == rounds and max(per_task.values()) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("held_for", ["a moment", "too long"])
def test_a_locked_last_task_is_waited_for_not_reported_gone(lease_path, held_for):
    """The last open task is row-locked by a writer (another annotator's submit on it, say)
    when next-task asks. Skipping it would tell the annotator the queue is empty while it
    still has a free seat; next-task waits for the writer and leases it. A writer that holds
    on longer than next-task waits (_LOCK_WAIT_MS) gets "nothing now", not a hung request."""
    if connection.vendor != "postgresql":
        pytest.skip("row locking is what is under test; it needs PostgreSQL (DATABASE_URL)")
    project = make_project(overlap_k=K, gold_rate=0.0)
    task = make_task(project)
    alice = make_user("alice")
    locked, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            with transaction.atomic():
                ComparisonTask.objects.select_for_update().get(pk=task.pk)
                locked.set()
                release.wait(timeout=30)
        except BaseException as exc:  # surfaced below
            failures.append(exc)
        finally:
            locked.set()
            connections.close_all()

    holder = threading.Thread(target=writer)
    holder.start()
    assert locked.wait(timeout=30)
    asked: list[object] = []

    def ask() -> None:
        try:
            asked.append(services.assignment_next(project=project, annotator=alice))
        except BaseException as exc:  # surfaced below
            failures.append(exc)
        finally:
            connections.close_all()

    asker = threading.Thread(target=ask)
    asker.start()
    asker.join(timeout=0.5)
    # It is still waiting for the lock, not back with "nothing left".
    assert asker.is_alive() and asked == []
    if held_for == "too long":
        asker.join(timeout=services._LOCK_WAIT_MS / 1000 + 10)
        assert not asker.is_alive() and asked == [None] and failures == []
        # Inside a caller's transaction too, and the transaction keeps its own lock timeout.
        with transaction.atomic(), connection.cursor() as cursor:
            assert services.assignment_next(project=project, annotator=alice) is None
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone()[0] == "0"
        release.set()
        holder.join(timeout=30)
        # The wait was over for those requests only: the next one gets the task.
        assert services.assignment_next(project=project, annotator=alice).task_id == task.pk
        return
    release.set()
    holder.join(timeout=30)
    asker.join(timeout=30)
    assert failures == []
    lease = asked[0]
    assert lease is not None and lease.task_id == task.pk
