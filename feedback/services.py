"""Every state change in collection goes through one of these functions."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import random
import unicodedata
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, OperationalError, ProgrammingError, connection, transaction
from django.utils import timezone

from feedback.models import (
    Assignment,
    AssignmentState,
    Choice,
    ComparisonTask,
    Judgment,
    JudgmentSource,
    Project,
    Prompt,
    PromptSource,
    Response,
    ResponseSource,
    Side,
    Strength,
)
from feedback.validation import clean_optional_text, clean_text
from flywheel.db import is_row_id, prepared_cursor
from flywheel.errors import Conflict, InvalidInput, NotFound, PermissionDeniedError
from flywheel.hooks import items_created
from flywheel.models import User
from flywheel.services import audit_record

logger = logging.getLogger(__name__)

MAX_RATIONALE_CHARS = 5_000
MAX_INSTRUCTION_CHARS = 8_000
MAX_SKIP_REASON_CHARS = 500
MAX_KEY_CHARS = 100
MAX_EXTERNAL_ID_CHARS = 200
_LEASE_ATTEMPTS = 20
# How long next-task waits for a locked task when every open one is locked (see _lease_one).
_LOCK_WAIT_MS = 2_000


# --- Projects --------------------------------------------------------------------------------


def project_create(
    *,
    actor: User | None,
    name: str,
    guidelines: str = "",
    overlap_k: int = 3,
    gold_rate: float = 0.1,
    lease_seconds: int = 600,
) -> Project:
    name = clean_text(name, field="name", max_chars=200).strip()
    if not isinstance(overlap_k, int) or isinstance(overlap_k, bool) or not 1 <= overlap_k <= 50:
        raise InvalidInput("overlap_k must be a whole number from 1 to 50", field="overlap_k")
    if not isinstance(gold_rate, int | float) or not 0 <= gold_rate <= 1:
        raise InvalidInput("gold_rate must be a number from 0 to 1", field="gold_rate")
    if not isinstance(lease_seconds, int) or not 10 <= lease_seconds <= 86_400:
        raise InvalidInput("lease_seconds must be from 10 to 86400", field="lease_seconds")
    guidelines = clean_optional_text(guidelines, field="guidelines", max_chars=64_000)
    taken = Conflict(f"A project named {name!r} already exists", field="name")
    with transaction.atomic():
        if Project.objects.filter(name=name).exists():
            raise taken
        try:
            # Two admins creating the same name at once both pass the check above; the unique
            # constraint decides, and the loser gets the same answer instead of a 500.
            with transaction.atomic():
                project = Project.objects.create(
                    name=name,
                    guidelines=guidelines,
                    overlap_k=overlap_k,
                    gold_rate=float(gold_rate),
                    lease_seconds=lease_seconds,
                )
        except IntegrityError:
            raise taken from None
        audit_record(actor=actor, action="project.create", target=project, after={"name": name})
    return project


# --- Prompts, responses, demonstrations ------------------------------------------------------


def prompt_create(
    *,
    project: Project,
    text: str,
    source: str = PromptSource.HUMAN,
    author: User | None = None,
    external_id: str = "",
) -> Prompt:
    text = clean_text(text, field="text")
    prompt = Prompt.objects.create(
        project=project, text=text, source=source, author=author, external_id=external_id
    )
    items_created(project_id=project.pk)
    return prompt


def response_create(
    *,
    prompt: Prompt,
    text: str,
    source: str,
    author: User | None = None,
    model_name: str = "",
    external_id: str = "",
) -> Response:
    text = clean_text(text, field="text")
    items_created(project_id=prompt.project_id)
    return Response.objects.create(
        project_id=prompt.project_id,
        prompt=prompt,
        text=text,
        source=source,
        author=author,
        model_name=model_name,
        external_id=external_id,
    )


def demonstration_submit(*, project: Project, author: User, instruction: str, response: str) -> Response:
    """An annotator writes an instruction and its ideal answer."""
    if not project.is_active or not project.write_enabled:
        raise Conflict("Writing demonstrations is turned off for this project")
    instruction = clean_text(instruction, field="instruction", max_chars=MAX_INSTRUCTION_CHARS)
    response = clean_text(response, field="response")
    with transaction.atomic():
        prompt = Prompt.objects.create(
            project=project, text=instruction, source=PromptSource.HUMAN, author=author
        )
        items_created(project_id=project.pk)
        return Response.objects.create(
            project=project,
            prompt=prompt,
            text=response,
            source=ResponseSource.DEMONSTRATION,
            author=author,
        )


def comparison_task_create(
    *,
    project: Project,
    prompt: Prompt,
    response_a: Response,
    response_b: Response,
    priority: float = 0.0,
    is_gold: bool = False,
    gold_answer: str = "",
    external_id: str = "",
    training_weight: float = 1.0,
) -> ComparisonTask:
    if response_a.pk == response_b.pk:
        raise InvalidInput("A comparison needs two different responses", field="response_b")
    if not (math.isfinite(training_weight) and training_weight > 0):
        raise InvalidInput("training_weight must be a positive number", field="training_weight")
    for label, response in (("response_a", response_a), ("response_b", response_b)):
        if response.prompt_id != prompt.pk:
            raise InvalidInput(f"{label} answers a different prompt", field=label)
    if prompt.project_id != project.pk:
        raise InvalidInput("The prompt belongs to another project", field="prompt")
    if is_gold and gold_answer not in Choice.values:
        raise InvalidInput(
            f"A gold task needs gold_answer, one of {', '.join(Choice.values)}", field="gold_answer"
        )
    return ComparisonTask.objects.create(
        project=project,
        prompt=prompt,
        response_a=response_a,
        response_b=response_b,
        priority=float(priority),
        is_gold=is_gold,
        gold_answer=gold_answer if is_gold else "",
        external_id=external_id,
        training_weight=float(training_weight),
    )


# --- Assignment ------------------------------------------------------------------------------
#
# Next-task and submit are the hot path: every judgment runs both. They are plain SQL rather
# than ORM querysets because building and compiling the querysets cost more CPU than
# PostgreSQL spent running them (docs/benchmarks.md). The statements run on PostgreSQL and
# SQLite alike; only the row locks are PostgreSQL's. Only table names (from the models' _meta)
# and enum values are formatted into them; every value is a parameter.

_T = ComparisonTask._meta.db_table
_A = Assignment._meta.db_table
_J = Judgment._meta.db_table
_ACTIVE = AssignmentState.ACTIVE.value


def _live_leases(task: str, *, excluding_annotator: bool = False) -> str:
    """SQL counting the live leases on one task: what, beside its judgments, takes one of its
    overlap_k seats. Params: now, [the annotator left out].

    The expiry is a FILTER, not part of the WHERE: in the WHERE, the planner may answer the
    count from the expires_at index, which (every lease of the last lease_seconds being "not
    yet expired") reads thousands of leases per task instead of the task's few.
    """
    other = " AND la.annotator_id <> %s" if excluding_annotator else ""
    return (
        f"SELECT COUNT(*) FILTER (WHERE la.expires_at > %s) FROM {_A} la"  # noqa: S608
        f" WHERE la.task_id = {task} AND la.state = '{_ACTIVE}'{other}"
    )


def _seats_taken(*, excluding_annotator: bool = False) -> str:
    """SQL for the seats taken on one task: its judgments plus its live leases.

    Params: the task, [the annotator left out,] now, the task again, [the annotator again].
    """
    other = " AND annotator_id <> %s" if excluding_annotator else ""
    return (
        f"((SELECT COUNT(*) FROM {_J} WHERE task_id = %s{other})"  # noqa: S608
        f" + ({_live_leases('%s', excluding_annotator=excluding_annotator)}))"
    )


# A task's columns and texts, for a lease handed out with everything the page needs.
_TASK_WITH_TEXT = (
    "t.id, t.prompt_id, t.response_a_id, t.response_b_id, t.is_gold, t.suggested_preference,"
    " p.text, ra.text, rb.text"
    f" FROM {_T} t JOIN {Prompt._meta.db_table} p ON p.id = t.prompt_id"
    f" JOIN {Response._meta.db_table} ra ON ra.id = t.response_a_id"
    f" JOIN {Response._meta.db_table} rb ON rb.id = t.response_b_id"
)
_HELD_SQL = (
    f"SELECT a.id, a.leased_at, a.expires_at, a.left_side, {_TASK_WITH_TEXT}"
    f" JOIN {_A} a ON a.task_id = t.id"
    f" WHERE a.annotator_id = %s AND a.state = '{_ACTIVE}' AND t.project_id = %s ORDER BY a.leased_at"
)
_LEASE_INSERT_SQL = (
    f"INSERT INTO {_A} (task_id, annotator_id, leased_at, expires_at, state, left_side, skip_reason)"
    " SELECT %s, %s, %s, %s, %s, %s, ''"
)
# An ordinary task takes the lease only while it has a free seat. The candidate query may have
# counted before a commit that landed before we took the row lock; this statement is newer
# (READ COMMITTED gives each statement a fresh snapshot) and sees every commit.
_LEASE_INSERT_IF_FREE_SQL = f"{_LEASE_INSERT_SQL} WHERE {_seats_taken()} < %s RETURNING id"
_LEASE_INSERT_SQL += " RETURNING id"
# A lease this annotator let lapse on the task about to be leased, still marked active: closed
# first, or the new lease would break the one-active-lease-per-annotator-and-task constraint.
# Only after the task's row lock is taken, as a late submit of that lease takes them (task, then
# lease): the other order could deadlock with it. Params: now, the annotator, the task.
_LAPSED_CLOSE_SQL = (
    f"UPDATE {_A} SET state = '{AssignmentState.EXPIRED.value}', closed_at = %s"  # noqa: S608
    f" WHERE annotator_id = %s AND task_id = %s AND state = '{_ACTIVE}'"
)
# The project's columns a submit answers with, so that "next": true needs no query for the
# project. Its guidelines are left out (deferred): they can be long, and leasing never reads them.
_SUBMIT_PROJECT_COLUMNS = [f.attname for f in Project._meta.concrete_fields if f.attname != "guidelines"]
_SUBMIT_LEASE_SQL = (
    "SELECT a.annotator_id, a.task_id, a.state, a.expires_at, a.left_side, t.is_gold,"  # noqa: S608
    f" {', '.join('pr.' + column for column in _SUBMIT_PROJECT_COLUMNS)}"
    f" FROM {_A} a JOIN {_T} t ON t.id = a.task_id JOIN {Project._meta.db_table} pr ON pr.id = t.project_id"
    " WHERE a.id = %s"
)
# An earlier judgment that refuses a new one: this annotator's, with this key or on this task.
# Params: annotator, task, key.
_EARLIER = "annotator_id = %s AND (task_id = %s OR (idempotency_key = %s AND idempotency_key <> ''))"
_SUBMIT_EARLIER_SQL = f"SELECT id, task_id, idempotency_key FROM {_J} WHERE {_EARLIER}"  # noqa: S608
# Seats taken by others, for a submit on a lapsed lease.
_SUBMIT_OTHERS_SQL = f"SELECT {_seats_taken(excluding_annotator=True)}"
_JUDGMENT_COLUMNS = [
    "task_id",
    "annotator_id",
    "assignment_id",
    "choice",
    "strength",
    "rationale",
    "left_side",
    "time_spent_ms",
    "idempotency_key",
    "source",
    "external_id",
    "created_at",
    "updated_at",
]
_JUDGMENT_INTO = f"INSERT INTO {_J} ({', '.join(_JUDGMENT_COLUMNS)})"
_JUDGMENT_INSERT_SQL = f"{_JUDGMENT_INTO} SELECT {', '.join(['%s'] * len(_JUDGMENT_COLUMNS))}"


def _not_judged_before(task: str) -> str:
    """SQL: no earlier judgment of this annotator refuses a new one on `task` (the same task, or
    the same idempotency key). Params: [the task, when `task` is %s,] the annotator, the annotator
    again, the key.

    Two probes, one per unique index, not _EARLIER's OR: for that, the planner read all of the
    annotator's judgments.
    """
    return (
        f"NOT EXISTS (SELECT 1 FROM {_J} WHERE task_id = {task} AND annotator_id = %s)"  # noqa: S608
        f" AND NOT EXISTS (SELECT 1 FROM {_J} WHERE annotator_id = %s AND idempotency_key = %s"
        " AND idempotency_key <> '')"
    )


# On a live lease, the usual case, the insert itself checks for an earlier judgment; only when it
# finds one does the submit look at it.
_JUDGMENT_INSERT_IF_NEW_SQL = f"{_JUDGMENT_INSERT_SQL} WHERE {_not_judged_before('%s')} RETURNING id"
_JUDGMENT_INSERT_SQL += " RETURNING id"
_LEASE_CLOSE_SQL = f"UPDATE {_A} SET state = %s, closed_at = %s WHERE id = %s"  # noqa: S608
# The judgment's columns that the one-statement submit takes from the lease row, not from params.
_FROM_LEASE = {"task_id": "lease.task_id", "left_side": "lease.left_side"}
# The usual submit as one statement (PostgreSQL): lock the task, insert the judgment when the lease
# is this annotator's and live and nothing earlier refuses it, close the lease. In autocommit that
# is one round trip where the transaction below takes five. Params: the lease; the judgment's
# columns but _FROM_LEASE's; the owner, now; the annotator, the annotator, the key; closed at, the
# lease.
_SUBMIT_AT_ONCE_SQL = (
    f"WITH lease AS ({_SUBMIT_LEASE_SQL} FOR UPDATE OF t),"  # noqa: S608
    f" ins AS ({_JUDGMENT_INTO} SELECT {', '.join(_FROM_LEASE.get(c, '%s') for c in _JUDGMENT_COLUMNS)}"
    f" FROM lease WHERE lease.annotator_id = %s AND lease.state = '{_ACTIVE}' AND lease.expires_at > %s"
    f" AND {_not_judged_before('lease.task_id')} RETURNING id),"
    f" closed AS (UPDATE {_A} SET state = '{AssignmentState.SUBMITTED.value}', closed_at = %s"
    " WHERE id = %s AND EXISTS (SELECT 1 FROM ins))"
    " SELECT lease.*, (SELECT id FROM ins) FROM lease"
)


def _open_tasks(
    *, project: Project, annotator: User, gold: bool, now: datetime, passed_over: Sequence[int] = ()
) -> tuple[str, list[Any]]:
    """FROM and WHERE (no ORDER BY) for the tasks this annotator may be given now, with params."""
    where = [
        "t.project_id = %s",
        "t.is_gold" if gold else "NOT t.is_gold",
        f"NOT EXISTS (SELECT 1 FROM {_J} j WHERE j.task_id = t.id AND j.annotator_id = %s)",  # noqa: S608
        f"NOT EXISTS (SELECT 1 FROM {_A} s WHERE s.task_id = t.id AND s.annotator_id = %s"  # noqa: S608
        f" AND s.state = '{AssignmentState.SKIPPED.value}')",
    ]
    params: list[Any] = [project.pk, annotator.pk, annotator.pk]
    if not gold:
        # Gold tasks are answered by everyone; everything else stops at overlap_k seats.
        # wants_judgments leaves the judged tasks out before any count is taken, through the
        # task_queue index that holds only the others; the live leases are counted per task.
        where += ["t.wants_judgments", f"t.judgment_count + ({_live_leases('t.id')}) < %s"]
        params += [now, project.overlap_k]
    if passed_over:
        where.append(f"t.id NOT IN ({', '.join(['%s'] * len(passed_over))})")
        params += passed_over
    return f"FROM {_T} t WHERE {' AND '.join(where)}", params


def open_task_count(*, project: Project, annotator: User, gold: bool, now: datetime) -> int:
    """How many tasks of one kind (gold or not) this annotator could be given right now."""
    sql, params = _open_tasks(project=project, annotator=annotator, gold=gold, now=now)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) {sql}", params)
        return int(cursor.fetchone()[0])


def _aware(value: Any) -> datetime:
    # A raw cursor on SQLite hands back naive UTC datetimes (or text); PostgreSQL, aware ones.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)


def _leased(row: Sequence[Any], *, annotator: User) -> Assignment:
    """An Assignment from a lease row plus its task's columns and texts, with no more queries.

    The fields the row does not carry are deferred: reading one loads it from the database
    instead of showing a default.
    """
    pk, leased_at, expires_at, left_side, task_id, prompt_id, a_id, b_id, is_gold, suggested, *texts = row
    prompt, text_a, text_b = texts
    db = connection.alias
    task = ComparisonTask.from_db(
        db,
        ["id", "prompt_id", "response_a_id", "response_b_id", "is_gold", "suggested_preference"],
        [task_id, prompt_id, a_id, b_id, bool(is_gold), suggested],
    )
    task.prompt = Prompt.from_db(db, ["id", "text"], [prompt_id, prompt])
    task.response_a = Response.from_db(db, ["id", "text"], [a_id, text_a])
    task.response_b = Response.from_db(db, ["id", "text"], [b_id, text_b])
    assignment = Assignment.from_db(
        db,
        ["id", "task_id", "annotator_id", "leased_at", "expires_at", "state", "left_side"],
        [pk, task_id, annotator.pk, _aware(leased_at), _aware(expires_at), _ACTIVE, left_side],
    )
    assignment.task = task
    assignment.annotator = annotator
    return assignment


def _lease_one(
    *, project: Project, annotator: User, gold: bool, now: datetime, lapsed: set[int]
) -> Assignment | None:
    """A new lease on the first open task, or None. `lapsed`: the tasks on which the annotator
    holds a lease past its expiry that is still marked active."""
    # SKIP LOCKED hands concurrent annotators different rows instead of a queue. When it finds
    # nothing, every open task left may be locked for a moment (its last seats being leased or
    # submitted right now), so the candidate is asked for once more, waiting for the lock: the
    # holder is usually one short transaction, and the wait is bounded (_LOCK_WAIT_MS) for when
    # it is not. Without the wait, an annotator is told the queue is empty while a seat is still
    # free, and the seat stays empty.
    row_locks = connection.features.has_select_for_update_skip_locked
    passed_over: list[int] = []
    for _ in range(_LEASE_ATTEMPTS):
        with transaction.atomic(), prepared_cursor() as cursor:
            sql, params = _open_tasks(
                project=project, annotator=annotator, gold=gold, now=now, passed_over=passed_over
            )
            candidate = (
                f"SELECT {_TASK_WITH_TEXT} WHERE t.id = (SELECT t.id {sql}"
                f" ORDER BY t.priority DESC, t.id LIMIT 1{' FOR UPDATE OF t' if row_locks else ''}"
            )
            cursor.execute(f"{candidate}{' SKIP LOCKED' if row_locks else ''})", params)
            task_row = cursor.fetchone()
            if task_row is None and row_locks:
                task_row = _candidate_waiting(cursor, f"{candidate})", params)
            if task_row is None:
                return None
            task_id = task_row[0]
            if task_id in lapsed:
                cursor.execute(_LAPSED_CLOSE_SQL, [now, annotator.pk, task_id])
            left_side = random.choice([Side.A, Side.B]).value
            expires_at = now + timedelta(seconds=project.lease_seconds)
            lease = [task_id, annotator.pk, now, expires_at, _ACTIVE, left_side]
            if gold:
                cursor.execute(_LEASE_INSERT_SQL, lease)
            else:
                cursor.execute(_LEASE_INSERT_IF_FREE_SQL, [*lease, task_id, now, task_id, project.overlap_k])
            inserted = cursor.fetchone()
            if inserted is None:
                passed_over.append(task_id)
                continue
            pk = inserted[0]
        return _leased((pk, now, expires_at, left_side, *task_row), annotator=annotator)
    return None


def _candidate_waiting(cursor: Any, sql: str, params: Sequence[Any]) -> Sequence[Any] | None:
    """The candidate row from `sql` (PostgreSQL, FOR UPDATE), waiting at most _LOCK_WAIT_MS for
    its lock; None when the wait ran out. Inside the caller's transaction."""
    cursor.execute("SELECT current_setting('lock_timeout')")
    before = cursor.fetchone()[0]
    try:
        with transaction.atomic():  # a savepoint: a lock timeout spoils only itself
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{_LOCK_WAIT_MS}ms"])
            cursor.execute(sql, params)
            row = cursor.fetchone()
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        row = None
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [before])
    return row


# --- Next-task in one round trip (PostgreSQL) ---------------------------------------------------
#
# On PostgreSQL the whole of next-task after the project checks (the held lease, the candidate
# under its row lock, closing a lapsed lease on it, the seat-checked insert, for gold and
# ordinary tasks in the drawn order) runs inside one PL/pgSQL function: one round trip instead
# of five (the held lease, BEGIN, candidate, insert, COMMIT). A VOLATILE function's statements
# each take a fresh snapshot under READ COMMITTED, so the insert's seat check sees every commit
# that landed while the candidate's row lock was awaited, exactly as the separate statements do.
#
# The function is written from the same SQL the stepwise path runs (_open_tasks, _HELD_SQL and
# the lease inserts), with its parameters inlined as the function's arguments, so the rules live
# in one place. Its name carries a hash of its text: post_migrate creates it (feedback.apps), and
# code whose SQL changed never calls a function written from older SQL; until migrate has run,
# next-task takes the stepwise path.

_LEASE_FUNCTION_RESULT = (
    "o_id bigint, o_leased_at timestamptz, o_expires_at timestamptz, o_left_side varchar,"
    " o_task bigint, o_prompt bigint, o_response_a bigint, o_response_b bigint, o_is_gold boolean,"
    " o_suggested double precision, o_prompt_text text, o_text_a text, o_text_b text"
)


def _inline(sql: str, exprs: Sequence[str]) -> str:
    """`sql` with its %s placeholders replaced, in order, by SQL expressions."""
    parts = sql.split("%s")
    if len(parts) != len(exprs) + 1:
        raise ValueError(f"{len(parts) - 1} placeholders for {len(exprs)} expressions")
    return "".join(part + expr for part, expr in zip(parts, [*exprs, ""], strict=True))


@functools.cache
def lease_function() -> tuple[str, str]:
    """(name, CREATE FUNCTION statement) of next-task's one-round-trip form."""
    # Stand-ins whose "values" are the function's argument names.
    project: Any = type("ProjectArgs", (), {"pk": "p_project", "overlap_k": "p_k"})()
    annotator: Any = type("AnnotatorArgs", (), {"pk": "p_annotator"})()
    now: Any = "p_now"
    lease = ["v_task", "p_annotator", "p_now", "p_expires", f"'{_ACTIVE}'", "p_left"]
    candidates = {}
    for gold in (True, False):
        sql, params = _open_tasks(project=project, annotator=annotator, gold=gold, now=now)
        candidate = (
            f"SELECT t.id INTO v_task {_inline(sql, params)} AND NOT (t.id = ANY(v_passed))"
            f" ORDER BY t.priority DESC, t.id LIMIT 1 FOR UPDATE OF t"
        )
        # As in _lease_one: skip locked rows, and when that finds nothing, wait for the lock, at
        # most _LOCK_WAIT_MS. Unlike _lease_one's, this transaction keeps the locks of the tasks
        # it passed over (their seats filled meanwhile), so two annotators can each wait for a
        # task the other passed over. PostgreSQL breaks that deadlock; the annotator it picks
        # gets no task this time, not an error.
        candidates[gold] = f"""{candidate} SKIP LOCKED;
                IF v_task IS NULL THEN
                    v_timeout := current_setting('lock_timeout');
                    BEGIN
                        PERFORM set_config('lock_timeout', '{_LOCK_WAIT_MS}ms', true);
                        {candidate};
                    EXCEPTION WHEN deadlock_detected OR lock_not_available THEN
                        v_task := NULL;
                    END;
                    PERFORM set_config('lock_timeout', v_timeout, true);
                END IF"""
    # Only table names, enum values and argument names are formatted in, as everywhere here.
    body = f"""
#variable_conflict use_column
DECLARE
    v_gold boolean;
    v_task bigint;
    v_lease bigint;
    v_passed bigint[];
    v_timeout text;
BEGIN
    RETURN QUERY SELECT * FROM ({_inline(_HELD_SQL, ["p_annotator", "p_project"])}) held
        WHERE held.expires_at > p_now ORDER BY held.leased_at LIMIT 1;
    IF FOUND THEN
        RETURN;
    END IF;
    FOREACH v_gold IN ARRAY ARRAY[p_gold_first, NOT p_gold_first] LOOP
        v_passed := '{{}}';
        FOR attempt IN 1..{_LEASE_ATTEMPTS} LOOP
            v_task := NULL;
            v_lease := NULL;
            IF v_gold THEN
                {candidates[True]};
            ELSE
                {candidates[False]};
            END IF;
            EXIT WHEN v_task IS NULL;
            {_inline(_LAPSED_CLOSE_SQL, ["p_now", "p_annotator", "v_task"])};
            IF v_gold THEN
                {_inline(_LEASE_INSERT_SQL, lease)} INTO v_lease;
            ELSE
                {_inline(_LEASE_INSERT_IF_FREE_SQL, [*lease, "v_task", "p_now", "v_task", "p_k"])}
                    INTO v_lease;
            END IF;
            IF v_lease IS NOT NULL THEN
                RETURN QUERY SELECT v_lease, p_now, p_expires, p_left, {_TASK_WITH_TEXT} WHERE t.id = v_task;
                RETURN;
            END IF;
            v_passed := v_passed || v_task;
        END LOOP;
    END LOOP;
END
"""  # noqa: S608
    digest = hashlib.sha256(body.encode()).hexdigest()[:12]
    name = f"flywheel_lease_next_{digest}"
    create = (
        f"CREATE OR REPLACE FUNCTION {name}(p_project bigint, p_annotator bigint, p_now timestamptz,"
        f" p_expires timestamptz, p_gold_first boolean, p_left varchar, p_k integer)"
        f" RETURNS TABLE ({_LEASE_FUNCTION_RESULT}) LANGUAGE plpgsql VOLATILE AS $fn${body}$fn$"
    )
    return name, create


def lease_function_install(using: str = "default") -> None:
    """Create next-task's function (PostgreSQL; run after every migrate), and drop the ones
    written from older SQL. Idempotent. Code still running an older release meanwhile finds
    its function gone and takes the stepwise path until it is replaced."""
    from django.db import connections

    if connections[using].vendor != "postgresql":
        return
    name, create = lease_function()
    with connections[using].cursor() as cursor:
        cursor.execute(create)
        cursor.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p"
            " WHERE p.pronamespace = current_schema()::regnamespace"
            " AND p.proname LIKE 'flywheel\\_lease\\_next\\_%%' AND p.proname <> %s",
            [name],
        )
        for (older,) in cursor.fetchall():
            cursor.execute(f"DROP FUNCTION IF EXISTS {older}")


def _lease_at_once(
    *, project: Project, annotator: User, now: datetime, gold_first: bool
) -> tuple[bool, Assignment | None]:
    """(whether the function ran, the lease or None): next-task in one round trip."""
    name, _ = lease_function()
    expires_at = now + timedelta(seconds=project.lease_seconds)
    left_side = random.choice([Side.A, Side.B]).value
    params: list[Any] = [project.pk, annotator.pk, now, expires_at, gold_first, left_side, project.overlap_k]
    # Only a missing function may fall back, and the transaction it aborted must survive it.
    guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
    try:
        with guard, prepared_cursor() as cursor:
            cursor.execute(f"SELECT * FROM {name}(%s, %s, %s, %s, %s, %s, %s)", params)  # noqa: S608
            row = cursor.fetchone()
    except ProgrammingError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != "42883":  # undefined_function
            raise
        logger.warning("%s is missing (run migrate); next-task takes the stepwise path", name)
        return False, None
    return True, None if row is None else _leased(row, annotator=annotator)


def assignment_next(
    *, project: Project, annotator: User, now: datetime | None = None, rng: random.Random | None = None
) -> Assignment | None:
    """Lease the highest-priority open task this annotator has not judged or skipped.

    A live lease the annotator already holds is returned again, so a reload never takes a
    second seat. Gold tasks are drawn at the project's gold rate. The lease comes with its
    task's prompt and response texts loaded.
    """
    if not annotator.is_active:
        raise PermissionDeniedError("This account is disabled")
    if not project.is_active or not project.compare_enabled:
        raise Conflict("Comparisons are turned off for this project")
    now = now or timezone.now()
    draw = (rng or random).random()
    gold_first = project.gold_rate > 0 and draw < project.gold_rate
    if connection.vendor == "postgresql":
        ran, lease = _lease_at_once(project=project, annotator=annotator, now=now, gold_first=gold_first)
        if ran:
            return lease
    with prepared_cursor() as cursor:
        cursor.execute(_HELD_SQL, [annotator.pk, project.pk])
        held = cursor.fetchall()
    for row in held:
        if _aware(row[2]) > now:
            return _leased(row, annotator=annotator)
    lapsed = {row[4] for row in held}  # the tasks of leases held past their expiry
    for gold in (gold_first, not gold_first):
        lease = _lease_one(project=project, annotator=annotator, gold=gold, now=now, lapsed=lapsed)
        if lease is not None:
            return lease
    return None


def _own_assignment(*, assignment: Assignment, annotator: User) -> None:
    if assignment.annotator_id != annotator.pk:
        raise PermissionDeniedError("This assignment belongs to another annotator")


# A submit's checked input: choice, strength, rationale, time spent, idempotency key.
_Fields = tuple[str, str, str, int | None, str]


def _submit_input(
    *, choice: object, strength: object, rationale: object, time_spent_ms: object, idempotency_key: object
) -> _Fields:
    """The checked input (_Fields), or InvalidInput naming the bad field."""
    if not isinstance(choice, str) or choice not in Choice.values:
        raise InvalidInput(f"choice must be one of {', '.join(Choice.values)}", field="choice")
    if not isinstance(strength, str) or strength not in ("", *Strength.values):
        raise InvalidInput(f"strength must be one of {', '.join(Strength.values)}", field="strength")
    if choice in (Choice.A, Choice.B) and not strength:
        strength = Strength.CLEAR.value
    if choice in (Choice.TIE, Choice.BOTH_BAD):
        strength = ""
    text = clean_optional_text(rationale, field="rationale", max_chars=MAX_RATIONALE_CHARS)
    if not isinstance(idempotency_key, str) or len(idempotency_key) > MAX_KEY_CHARS:
        raise InvalidInput(
            f"idempotency_key must be a string of at most {MAX_KEY_CHARS} characters", field="idempotency_key"
        )
    if time_spent_ms is not None and (
        not isinstance(time_spent_ms, int)
        or isinstance(time_spent_ms, bool)
        or not 0 <= time_spent_ms <= 86_400_000
    ):
        raise InvalidInput(
            "time_spent_ms must be a whole number of milliseconds, at most a day", field="time_spent_ms"
        )
    return choice, strength, text, time_spent_ms, idempotency_key


def _earlier_judgment(cursor: Any, *, annotator: User, task_id: int, key: str) -> Judgment | None:
    """What a repeated submit finds: the first judgment for a replayed idempotency key, a
    Conflict for a key used on another task or a task already judged, or None."""
    cursor.execute(_SUBMIT_EARLIER_SQL, [annotator.pk, task_id, key])
    earlier = cursor.fetchall()
    for earlier_id, earlier_task, earlier_key in earlier:
        if key and earlier_key == key:
            if earlier_task != task_id:
                raise Conflict(
                    "This idempotency key was already used for another task", field="idempotency_key"
                )
            return Judgment.objects.get(pk=earlier_id)
    if earlier:
        raise Conflict("You have already judged this comparison", code="already_judged")
    return None


def comparison_submit(
    *,
    assignment: Assignment | int,
    annotator: User,
    # Values straight from a request body are fine: each is checked, and refused by name.
    choice: object,
    strength: object = "",
    rationale: object = "",
    time_spent_ms: object = None,
    idempotency_key: object = "",
    source: str = JudgmentSource.UI,
    now: datetime | None = None,
) -> tuple[Judgment, bool]:
    """Record a judgment on a lease (the Assignment, or its id). Returns (judgment, created).

    An unknown or another annotator's lease is refused before the input is looked at. A
    repeated idempotency key returns the first judgment. A submit after the lease expired is
    accepted while the task still has a free seat; otherwise it is a Conflict, and the caller
    keeps the annotator's text on screen.
    """
    assignment_id = assignment if isinstance(assignment, int) else assignment.pk
    if not is_row_id(assignment_id):
        raise NotFound(f"No assignment with id {assignment_id}")
    now = now or timezone.now()
    checked = functools.partial(
        _submit_input,
        choice=choice,
        strength=strength,
        rationale=rationale,
        time_spent_ms=time_spent_ms,
        idempotency_key=idempotency_key,
    )
    fields: _Fields | None = None
    if connection.vendor == "postgresql":
        try:
            fields = checked()
        except InvalidInput:
            pass  # refused below, once the lease is known to be this annotator's
        else:
            done = _submit_at_once(assignment_id, annotator=annotator, fields=fields, source=source, now=now)
            if done is not None:
                return done, True
    # Everything else (SQLite, bad input, a lapsed, skipped or replayed lease, a race) in steps.
    # Every writer of a task's seats locks the task row first, so counts are exact. OF t: the
    # task row only; locking the project row too would queue every submit in the project.
    lock = " FOR UPDATE OF t" if connection.features.has_select_for_update_of else ""
    with transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute(_SUBMIT_LEASE_SQL + lock, [assignment_id])
        lease = cursor.fetchone()
        if lease is None:
            raise NotFound(f"No assignment with id {assignment_id}")
        owner_id, task_id, state, expires_at, left_side, is_gold, *project_row = lease
        project = _submit_project(project_row)
        overlap_k = project.overlap_k
        if owner_id != annotator.pk:
            raise PermissionDeniedError("This assignment belongs to another annotator")
        fields = fields or checked()
        idempotency_key = fields[-1]
        values = _judgment_values(task_id, annotator.pk, assignment_id, fields, left_side, source, now)
        if state == AssignmentState.ACTIVE and _aware(expires_at) > now:
            cursor.execute(
                _JUDGMENT_INSERT_IF_NEW_SQL, [*values, task_id, annotator.pk, annotator.pk, idempotency_key]
            )
        else:
            replayed = _earlier_judgment(cursor, annotator=annotator, task_id=task_id, key=idempotency_key)
            if replayed is not None:
                return replayed, False
            if state == AssignmentState.SKIPPED:
                raise Conflict("You skipped this comparison", code="skipped")
            if not is_gold:
                cursor.execute(_SUBMIT_OTHERS_SQL, [task_id, annotator.pk, now, task_id, annotator.pk])
                if cursor.fetchone()[0] >= overlap_k:
                    raise Conflict(
                        "Your lease on this comparison expired and it has since received all the "
                        "judgments it needs. Your rationale is kept below; take the next task.",
                        code="task_full",
                    )
            cursor.execute(_JUDGMENT_INSERT_SQL, values)
        inserted = cursor.fetchone()
        if inserted is None:
            # Not new: a replay returns the first judgment; anything else is refused.
            replayed = _earlier_judgment(cursor, annotator=annotator, task_id=task_id, key=idempotency_key)
            if replayed is None:
                # The insert saw a row this query no longer does: it was deleted meanwhile.
                raise Conflict("This comparison changed while you submitted it; take the next task")
            return replayed, False
        cursor.execute(_LEASE_CLOSE_SQL, [AssignmentState.SUBMITTED.value, now, assignment_id])
    return _judgment(inserted[0], values, project=project), True


def _judgment_values(
    task_id: int | None,
    annotator_id: int,
    assignment_id: int,
    fields: _Fields,
    left_side: str | None,
    source: str,
    now: datetime,
) -> list[Any]:
    """A new judgment's values, in _JUDGMENT_COLUMNS' order."""
    choice, strength, rationale, time_spent_ms, key = fields
    return [
        *(task_id, annotator_id, assignment_id, choice, strength, rationale, left_side, time_spent_ms),
        *(key, source, "", now, now),
    ]


def _submit_project(row: Sequence[Any]) -> Project:
    """The project from a submit's lease row (_SUBMIT_PROJECT_COLUMNS; the rest deferred)."""
    return Project.from_db(connection.alias, _SUBMIT_PROJECT_COLUMNS, row)


def _judgment(pk: int, values: Sequence[Any], *, project: Project) -> Judgment:
    """The Judgment just inserted with `values` (_JUDGMENT_COLUMNS), with its task's project
    as the submit read it, with no query."""
    judgment = Judgment.from_db(connection.alias, ["id", *_JUDGMENT_COLUMNS], [pk, *values])
    task = ComparisonTask.from_db(connection.alias, ["id", "project_id"], [judgment.task_id, project.pk])
    task.project = project
    judgment.task = task
    return judgment


def _submit_at_once(
    assignment_id: int,
    *,
    annotator: User,
    fields: _Fields,
    source: str,
    now: datetime,
) -> Judgment | None:
    """The usual submit in one statement (PostgreSQL): the new Judgment, or None when the lease
    needs the full path (lapsed, skipped, already judged, a replayed key). Refuses an unknown or
    another annotator's lease itself."""
    who, key = annotator.pk, fields[-1]
    # The lease's own columns are filled in by the statement, and by the row it answers with.
    values = _judgment_values(None, who, assignment_id, fields, None, source, now)
    new = [value for name, value in zip(_JUDGMENT_COLUMNS, values, strict=True) if name not in _FROM_LEASE]
    params: list[Any] = [assignment_id, *new, who, now, who, who, key, now, assignment_id]
    # In a caller's transaction, a savepoint keeps a refused insert from spoiling it.
    savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
    try:
        with savepoint, prepared_cursor() as cursor:
            cursor.execute(_SUBMIT_AT_ONCE_SQL, params)
            row = cursor.fetchone()
    except IntegrityError:
        # The same judgment submitted twice at once: the other one committed first (its insert
        # came after this statement's snapshot). The full path answers with the first one.
        return None
    if row is None:
        raise NotFound(f"No assignment with id {assignment_id}")
    owner_id, task_id, _state, _expires_at, left_side, _is_gold, *project_row, inserted = row
    if owner_id != annotator.pk:
        raise PermissionDeniedError("This assignment belongs to another annotator")
    if inserted is None:
        return None
    values = _judgment_values(task_id, who, assignment_id, fields, left_side, source, now)
    return _judgment(inserted, values, project=_submit_project(project_row))


def assignment_skip(
    *, assignment: Assignment, annotator: User, reason: str, now: datetime | None = None
) -> Assignment:
    _own_assignment(assignment=assignment, annotator=annotator)
    reason = clean_text(reason, field="reason", max_chars=MAX_SKIP_REASON_CHARS).strip()
    now = now or timezone.now()
    with transaction.atomic():
        updated = Assignment.objects.filter(
            pk=assignment.pk, state__in=[AssignmentState.ACTIVE, AssignmentState.EXPIRED]
        ).update(state=AssignmentState.SKIPPED, skip_reason=reason, closed_at=now)
        if updated != 1:
            raise Conflict("This assignment is already closed")
    assignment.refresh_from_db()
    return assignment


def leases_expire(*, now: datetime | None = None) -> int:
    """Mark lapsed leases expired. Counting already ignores them; this keeps states honest."""
    now = now or timezone.now()
    return Assignment.objects.filter(state=AssignmentState.ACTIVE, expires_at__lte=now).update(
        state=AssignmentState.EXPIRED, closed_at=now
    )


def assignment_get(*, assignment_id: int, annotator: User) -> Assignment:
    assignment = (
        Assignment.objects.select_related(
            "task__prompt", "task__response_a", "task__response_b", "task__project"
        )
        .filter(pk=assignment_id)
        .first()
    )
    if assignment is None:
        raise NotFound(f"No assignment with id {assignment_id}")
    _own_assignment(assignment=assignment, annotator=annotator)
    return assignment


# --- Work done outside Flywheel (datasets, Label Studio) -------------------------------------


def _check_external_id(external_id: object) -> str:
    if not isinstance(external_id, str) or not external_id or len(external_id) > MAX_EXTERNAL_ID_CHARS:
        raise InvalidInput(
            f"external_id must be a non-empty string of at most {MAX_EXTERNAL_ID_CHARS} characters",
            field="external_id",
        )
    return external_id


def judgment_import(
    *,
    task: ComparisonTask,
    annotator: User,
    choice: str,
    external_id: str,
    strength: str = "",
    rationale: str = "",
    left_side: str = "",
    time_spent_ms: int | None = None,
    made_at: datetime | None = None,
    source: str = JudgmentSource.IMPORT,
) -> tuple[Judgment, str]:
    """Record a judgment someone made outside Flywheel: a row of a dataset, a Label Studio
    annotation. Returns (judgment, outcome), outcome one of "created", "updated", "existing".

    No lease is taken or needed, and overlap_k does not cap it: the work is already done. The
    rule of one judgment per (task, annotator) still holds. `external_id` names the judgment
    where it came from: the same id again is the same judgment (unchanged, "existing"; edited
    at the source, "updated"), and another id for a pair already judged is a Conflict. `made_at`,
    when the source knows it, becomes created_at, so exports keep the original time.
    """
    external_id = _check_external_id(external_id)
    if choice not in Choice.values:
        raise InvalidInput(f"choice must be one of {', '.join(Choice.values)}", field="choice")
    if strength not in ("", *Strength.values):
        raise InvalidInput(f"strength must be one of {', '.join(Strength.values)}", field="strength")
    if choice in (Choice.TIE, Choice.BOTH_BAD):
        strength = ""
    if left_side not in ("", *Side.values):
        raise InvalidInput("left_side must be a, b or empty", field="left_side")
    rationale = clean_optional_text(rationale, field="rationale", max_chars=MAX_RATIONALE_CHARS)
    if time_spent_ms is not None and not 0 <= time_spent_ms <= 86_400_000:
        time_spent_ms = None
    fields: dict[str, Any] = {
        "choice": choice,
        "strength": strength,
        "rationale": rationale,
        "left_side": left_side,
        "time_spent_ms": time_spent_ms,
    }
    with transaction.atomic():
        # The same lock comparison_submit takes, so an import and a live submit by the same
        # person cannot both pass the uniqueness check below.
        ComparisonTask.objects.select_for_update(of=("self",)).get(pk=task.pk)
        existing = Judgment.objects.filter(task=task, annotator=annotator).first()
        if existing is not None:
            if existing.external_id != external_id:
                raise Conflict(
                    f"{annotator.username} already judged comparison {task.pk} (judgment {existing.pk})",
                    code="already_judged",
                )
            changed = [name for name, value in fields.items() if getattr(existing, name) != value]
            if not changed:
                return existing, "existing"
            for name in changed:
                setattr(existing, name, fields[name])
            existing.save(update_fields=[*changed, "updated_at"])
            return existing, "updated"
        judgment = Judgment.objects.create(
            task=task, annotator=annotator, source=source, external_id=external_id, **fields
        )
        if made_at is not None:
            # created_at is auto_now_add, which create() always overwrites.
            Judgment.objects.filter(pk=judgment.pk).update(created_at=made_at)
            judgment.created_at = made_at
    return judgment, "created"


def skip_import(
    *,
    task: ComparisonTask,
    annotator: User,
    reason: str,
    left_side: str = Side.A,
    now: datetime | None = None,
) -> tuple[Assignment, str]:
    """Record that an annotator skipped a comparison outside Flywheel (a cancelled Label Studio
    annotation). Returns (assignment, "created" | "existing").

    The skip is stored as a Flywheel skip is: a closed assignment in state skipped, so the task
    is never offered to this annotator again and the skip shows in their progress.
    """
    reason = clean_text(reason, field="reason", max_chars=MAX_SKIP_REASON_CHARS).strip()
    if left_side not in Side.values:
        raise InvalidInput("left_side must be a or b", field="left_side")
    now = now or timezone.now()
    with transaction.atomic():
        ComparisonTask.objects.select_for_update(of=("self",)).get(pk=task.pk)
        existing = Assignment.objects.filter(task=task, annotator=annotator, state=AssignmentState.SKIPPED)
        if (found := existing.first()) is not None:
            return found, "existing"
        # A lease this person holds in Flywheel on the same task ends with the skip.
        Assignment.objects.filter(task=task, annotator=annotator, state=AssignmentState.ACTIVE).update(
            state=AssignmentState.EXPIRED, closed_at=now
        )
        assignment = Assignment.objects.create(
            task=task,
            annotator=annotator,
            leased_at=now,
            expires_at=now,
            state=AssignmentState.SKIPPED,
            left_side=left_side,
            skip_reason=reason,
            closed_at=now,
        )
    return assignment, "created"


def demonstration_import(
    *, prompt: Prompt, author: User, text: str, external_id: str
) -> tuple[Response, str]:
    """Record a demonstration a person wrote outside Flywheel for one of its prompts (a Label
    Studio answer). Returns (response, "created" | "existing").

    Idempotent by external_id. A demonstration already imported is never rewritten: it may be
    curated or frozen in a snapshot by now, so a changed text is a Conflict for a person to see.
    """
    external_id = _check_external_id(external_id)
    text = clean_text(text, field="text")
    with transaction.atomic():
        existing = Response.objects.filter(project_id=prompt.project_id, external_id=external_id).first()
        if existing is not None:
            if existing.text != text or existing.prompt_id != prompt.pk:
                raise Conflict(
                    f"demonstration {external_id!r} was imported earlier with different text; not changed",
                    code="changed_at_source",
                )
            return existing, "existing"
        response = response_create(
            prompt=prompt,
            text=text,
            source=ResponseSource.DEMONSTRATION,
            author=author,
            external_id=external_id,
        )
    return response, "created"


# --- Trust -----------------------------------------------------------------------------------


def annotator_trust_refresh(*, now: datetime | None = None) -> int:
    """Recompute every annotator's trust from gold accuracy and leave-one-out agreement."""
    from feedback.selectors import annotator_evidence

    now = now or timezone.now()
    evidence = annotator_evidence()
    changed = 0
    for user_id, ev in evidence.items():
        changed += User.objects.filter(pk=user_id).update(trust=round(ev.trust, 6), trust_updated_at=now)
    return changed


# --- Import ----------------------------------------------------------------------------------


@dataclass
class ImportReport:
    lines: int = 0
    created: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "response": 0, "comparison": 0})
    existing: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "created": self.created,
            "existing": self.existing,
            "errors": self.errors,
        }


class _LineError(Exception):
    pass


def _str_field(
    record: dict[str, Any], name: str, *, required: bool = True, max_chars: int = MAX_EXTERNAL_ID_CHARS
) -> str:
    value = record.get(name)
    if value is None or value == "":
        if required:
            raise _LineError(f"{name} is required")
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _LineError(f"{name} must be a string")
    if len(value) > max_chars:
        raise _LineError(f"{name} is longer than {max_chars} characters")
    # Identifiers never need control characters, and PostgreSQL rejects NUL outright: the
    # lookup would fail with a database error instead of a line-numbered report.
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise _LineError(f"{name} contains a control character")
    return value


def _lookup(model: Any, project: Project, external_id: str, what: str) -> Any:
    obj = model.objects.filter(project=project, external_id=external_id).first()
    if obj is None:
        raise _LineError(f"unknown {what} external_id {external_id!r} (import it on an earlier line)")
    return obj


def _import_prompt(project: Project, record: dict[str, Any], actor: User | None) -> str:
    external_id = _str_field(record, "external_id")
    text = clean_text(record.get("text"), field="text")
    existing = Prompt.objects.filter(project=project, external_id=external_id).first()
    if existing is not None:
        if existing.text != text:
            raise _LineError(f"prompt {external_id!r} already exists with different text; not changed")
        return "existing"
    Prompt.objects.create(
        project=project, text=text, source=PromptSource.IMPORTED, author=None, external_id=external_id
    )
    return "prompt"


def _import_response(project: Project, record: dict[str, Any], actor: User | None) -> str:
    external_id = _str_field(record, "external_id")
    prompt = _lookup(Prompt, project, _str_field(record, "prompt_external_id"), "prompt")
    text = clean_text(record.get("text"), field="text")
    model_name = _str_field(record, "model_name", required=False)
    existing = Response.objects.filter(project=project, external_id=external_id).first()
    if existing is not None:
        if existing.text != text or existing.prompt_id != prompt.pk:
            raise _LineError(f"response {external_id!r} already exists with different content; not changed")
        return "existing"
    Response.objects.create(
        project=project,
        prompt=prompt,
        text=text,
        source=ResponseSource.IMPORTED,
        model_name=model_name,
        external_id=external_id,
    )
    return "response"


def _import_comparison(project: Project, record: dict[str, Any], actor: User | None) -> str:
    external_id = _str_field(record, "external_id")
    prompt = _lookup(Prompt, project, _str_field(record, "prompt_external_id"), "prompt")
    response_a = _lookup(Response, project, _str_field(record, "response_a_external_id"), "response")
    response_b = _lookup(Response, project, _str_field(record, "response_b_external_id"), "response")
    priority = record.get("priority", 0.0)
    # JSON in Python admits NaN and Infinity, and a NaN priority sorts unpredictably.
    if isinstance(priority, bool) or not isinstance(priority, int | float) or not math.isfinite(priority):
        raise _LineError("priority must be a finite number")
    is_gold = record.get("is_gold", False)
    if not isinstance(is_gold, bool):
        raise _LineError("is_gold must be true or false")
    gold_answer = _str_field(record, "gold_answer", required=False)
    existing = ComparisonTask.objects.filter(project=project, external_id=external_id).first()
    if existing is not None:
        if (existing.prompt_id, existing.response_a_id, existing.response_b_id) != (
            prompt.pk,
            response_a.pk,
            response_b.pk,
        ):
            raise _LineError(
                f"comparison {external_id!r} already exists with different responses; not changed"
            )
        return "existing"
    comparison_task_create(
        project=project,
        prompt=prompt,
        response_a=response_a,
        response_b=response_b,
        priority=float(priority),
        is_gold=is_gold,
        gold_answer=gold_answer,
        external_id=external_id,
    )
    return "comparison"


_IMPORTERS = {"prompt": _import_prompt, "response": _import_response, "comparison": _import_comparison}


def jsonl_import(*, project: Project, lines: Iterable[bytes | str], actor: User | None) -> ImportReport:
    """Import prompts, responses and comparison tasks from JSON Lines, streaming.

    Each line commits on its own, so one bad line costs only itself: it is reported with its
    number and reason, and the rest import. Re-importing the same file creates nothing new.
    """
    report = ImportReport()
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                report.lines += 1
                report.errors.append({"line": number, "reason": f"not valid UTF-8 ({exc.reason})"})
                continue
        if not raw.strip():
            continue
        report.lines += 1
        try:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise _LineError("each line must be a JSON object")
            kind = record.get("type")
            if kind not in _IMPORTERS:
                raise _LineError(f"type must be one of {', '.join(_IMPORTERS)}")
            with transaction.atomic():
                outcome = _IMPORTERS[kind](project, record, actor)
        except json.JSONDecodeError as exc:
            report.errors.append({"line": number, "reason": f"invalid JSON: {exc.msg} at column {exc.colno}"})
            continue
        except RecursionError:
            # json.loads recurses per nesting level; a line of "[[[[..." would otherwise be a 500.
            report.errors.append({"line": number, "reason": "invalid JSON: nested too deeply"})
            continue
        except (_LineError, InvalidInput) as exc:
            report.errors.append({"line": number, "reason": str(exc)})
            continue
        except IntegrityError as exc:
            report.errors.append(
                {"line": number, "reason": f"conflicts with existing data: {exc}".splitlines()[0]}
            )
            continue
        if outcome == "existing":
            report.existing += 1
        else:
            report.created[outcome] += 1
    if actor is not None:
        audit_record(
            actor=actor,
            action="project.import",
            target=project,
            after=report.as_dict() | {"errors": len(report.errors)},
        )
    return report


def settings_max_chars() -> int:
    from django.conf import settings

    return int(settings.FLYWHEEL_MAX_TEXT_CHARS)
