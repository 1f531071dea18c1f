"""Writes for interop: imports from other formats, importer annotators, Label Studio links.

The Label Studio sync itself is in interop/label_studio.py. Rows of the collection app are
only ever written through feedback.services.

Every import streams: lines are parsed and stored one at a time, each record in its own
savepoint (committed in batches), so one bad line costs only itself and is reported with its
number. Every row an
import creates gets an external_id derived from the source's own ids or, where a format has
none, from the content, so importing the same file again creates nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction

from feedback import services as feedback_services
from feedback.models import ComparisonTask, Project, Prompt, PromptSource, Response, ResponseSource
from flywheel.errors import Conflict, DomainError, InvalidInput
from flywheel.models import Role, User
from flywheel.services import audit_record
from interop import selectors
from interop.formats.common import Battle, Demonstration, LineError, Preference, RankedReplies
from interop.formats.registry import PARSERS
from interop.models import ExternalAnnotator, LabelStudioLink, LinkKind

logger = logging.getLogger(__name__)

# A garbage file could have millions of bad lines; the report keeps the first ones and a count.
MAX_REPORTED_ERRORS = 1000
# Records stored per commit. Larger is faster; a crash loses at most this many (re-import them).
COMMIT_EVERY = 200


def content_id(kind: str, *parts: str) -> str:
    """A stable external id for something a format gives no id: the hash of what it is."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
    return f"{kind}:{digest}"


# --- Importer annotators ---------------------------------------------------------------------

_NOT_IN_USERNAME = re.compile(r"[^\w.@+-]+")


def _free_username(hint: str) -> str:
    base = _NOT_IN_USERNAME.sub("-", hint).strip("-")[:140] or "imported"
    candidate, n = base, 1
    while User.objects.filter(username=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def importer_annotator(*, namespace: str, key: str, username_hint: str = "", email: str = "") -> User:
    """The Flywheel user that stands for `key` in `namespace`, created on first sight with the
    annotator role and no usable password."""
    key = key[:200]
    for _ in range(3):
        found = ExternalAnnotator.objects.filter(namespace=namespace, key=key).select_related("user").first()
        if found is not None:
            return found.user
        try:
            with transaction.atomic():
                user = User(username=_free_username(username_hint or key), role=Role.ANNOTATOR, email=email)
                user.set_unusable_password()
                user.save()
                ExternalAnnotator.objects.create(namespace=namespace, key=key, user=user)
                return user
        except IntegrityError:
            # Another import created this person (or took the username) a moment ago.
            continue
    raise Conflict(f"Could not create an annotator for {namespace}:{key}; try again")


# --- Import reports --------------------------------------------------------------------------


@dataclass
class ImportReport:
    format: str
    lines: int = 0
    records: int = 0
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    existing: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, line: int, reason: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"line": line, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "lines": self.lines,
            "records": self.records,
            "created": dict(sorted(self.created.items())),
            "updated": dict(sorted(self.updated.items())),
            "existing": self.existing,
            "error_count": self.error_count,
            "errors": self.errors,
        }


class _Counted:
    """Counts the lines a parser pulls, blank ones included, so the report can say how many."""

    def __init__(self, lines: Iterable[bytes | str]) -> None:
        self._lines = lines
        self.count = 0

    def __iter__(self) -> Iterator[bytes | str]:
        for line in self._lines:
            self.count += 1
            yield line


# --- Storing records -------------------------------------------------------------------------


@dataclass
class _Outcome:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


def _prompt(project: Project, *, external_id: str, text: str, out: _Outcome) -> Prompt:
    existing = Prompt.objects.filter(project=project, external_id=external_id).first()
    if existing is not None:
        if existing.text != text:
            raise Conflict(f"prompt {external_id!r} was imported earlier with different text; not changed")
        return existing
    out.created.append("prompt")
    return feedback_services.prompt_create(
        project=project, text=text, source=PromptSource.IMPORTED, external_id=external_id
    )


def _response(prompt: Prompt, *, external_id: str, text: str, model_name: str, out: _Outcome) -> Response:
    existing = Response.objects.filter(project_id=prompt.project_id, external_id=external_id).first()
    if existing is not None:
        if existing.text != text or existing.prompt_id != prompt.pk:
            raise Conflict(
                f"response {external_id!r} was imported earlier with different content; not changed"
            )
        return existing
    out.created.append("response")
    return feedback_services.response_create(
        prompt=prompt,
        text=text,
        source=ResponseSource.IMPORTED,
        model_name=model_name[:200],
        external_id=external_id,
    )


def _comparison(
    project: Project, prompt: Prompt, a: Response, b: Response, *, external_id: str, out: _Outcome
) -> ComparisonTask:
    existing = ComparisonTask.objects.filter(project=project, external_id=external_id).first()
    if existing is not None:
        if (existing.response_a_id, existing.response_b_id) != (a.pk, b.pk):
            raise Conflict(f"comparison {external_id!r} exists with other responses; not changed")
        return existing
    out.created.append("comparison")
    return feedback_services.comparison_task_create(
        project=project, prompt=prompt, response_a=a, response_b=b, external_id=external_id
    )


def _judge(
    task: ComparisonTask,
    judge: User,
    choice: str,
    *,
    external_id: str,
    out: _Outcome,
    made_at: datetime | None = None,
) -> None:
    try:
        _, status = feedback_services.judgment_import(
            task=task, annotator=judge, choice=choice, external_id=external_id, made_at=made_at
        )
    except Conflict as exc:
        raise Conflict(
            f"{judge.username} already judged this pair differently (comparison {task.pk}); not changed"
        ) from exc
    if status == "created":
        out.created.append("judgment")
    elif status == "updated":
        out.updated.append("judgment")


def _ordered_pair(first: Response, second: Response, *, first_wins: bool) -> tuple[Response, Response, str]:
    """Put the pair in a fixed a/b order that does not depend on which one won, so a dataset
    whose winners always come first does not become one where A always wins."""
    if first.external_id <= second.external_id:
        return first, second, "a" if first_wins else "b"
    return second, first, "b" if first_wins else "a"


def _store_preference(
    project: Project, record: Preference, judge: User, namespace: str, out: _Outcome
) -> None:
    prompt_id = content_id("content", record.prompt)
    prompt = _prompt(project, external_id=prompt_id, text=record.prompt, out=out)
    chosen = _response(
        prompt,
        external_id=content_id("content", prompt_id, record.chosen),
        text=record.chosen,
        model_name="",
        out=out,
    )
    rejected = _response(
        prompt,
        external_id=content_id("content", prompt_id, record.rejected),
        text=record.rejected,
        model_name="",
        out=out,
    )
    a, b, choice = _ordered_pair(chosen, rejected, first_wins=True)
    task_id = content_id("content", a.external_id, b.external_id)
    task = _comparison(project, prompt, a, b, external_id=task_id, out=out)
    _judge(task, judge, choice, external_id=content_id(namespace, task_id, chosen.external_id), out=out)


def _store_demonstration(project: Project, record: Demonstration, out: _Outcome) -> None:
    prompt_id = content_id("content", record.prompt)
    prompt = _prompt(project, external_id=prompt_id, text=record.prompt, out=out)
    before = len(out.created)
    _response(
        prompt,
        external_id=content_id("sft", prompt_id, record.completion),
        text=record.completion,
        model_name="",
        out=out,
    )
    if len(out.created) > before:
        out.created[-1] = "demonstration"


def _store_battle(project: Project, record: Battle, judge: User, out: _Outcome) -> None:
    prompt_id = f"arena:q:{record.question_id}"
    prompt = _prompt(project, external_id=prompt_id, text=record.prompt, out=out)
    a = _response(
        prompt,
        external_id=content_id("arena:r", prompt_id, record.model_a, record.response_a),
        text=record.response_a,
        model_name=record.model_a,
        out=out,
    )
    b = _response(
        prompt,
        external_id=content_id("arena:r", prompt_id, record.model_b, record.response_b),
        text=record.response_b,
        model_name=record.model_b,
        out=out,
    )
    task_id = content_id("arena:t", a.external_id, b.external_id)
    task = _comparison(project, prompt, a, b, external_id=task_id, out=out)
    made_at = datetime.fromtimestamp(record.tstamp, tz=UTC) if record.tstamp is not None else None
    _judge(
        task,
        judge,
        record.winner,
        external_id=content_id("arena:j", task_id, record.judge, repr(record.tstamp)),
        made_at=made_at,
        out=out,
    )


def _store_ranked(
    project: Project, record: RankedReplies, judge: User, namespace: str, out: _Outcome
) -> None:
    prompt = _prompt(project, external_id=f"oasst:{record.prompt_id}", text=record.prompt, out=out)
    replies = [
        _response(
            prompt,
            external_id=f"oasst:{reply.message_id}",
            text=reply.text,
            model_name=reply.model_name,
            out=out,
        )
        for reply in record.replies
    ]
    # Every pair, not only neighbours: with rank 0 > 1 > 2 as three comparisons, win counts
    # give back the ranking on export; with neighbours only, 0 and 1 would tie at one win each.
    for i in range(len(replies)):
        for j in range(i + 1, len(replies)):
            if record.replies[i].rank == record.replies[j].rank:
                continue  # ranked equal: no preference to record
            better, worse = replies[i], replies[j]
            a, b, choice = _ordered_pair(better, worse, first_wins=True)
            task_id = content_id("oasst:t", a.external_id, b.external_id)
            task = _comparison(project, prompt, a, b, external_id=task_id, out=out)
            judgment_id = content_id(namespace, task_id, better.external_id)
            _judge(task, judge, choice, external_id=judgment_id, out=out)


def _store(project: Project, item: Any, judge: User | None, namespace: str, out: _Outcome) -> None:
    if isinstance(item, Demonstration):
        _store_demonstration(project, item, out)
        return
    assert judge is not None
    if isinstance(item, Preference):
        _store_preference(project, item, judge, namespace, out)
    elif isinstance(item, Battle):
        _store_battle(project, item, judge, out)
    elif isinstance(item, RankedReplies):
        _store_ranked(project, item, judge, namespace, out)
    else:
        raise TypeError(f"no store for {type(item).__name__}")


# --- The import ------------------------------------------------------------------------------


def interop_import(
    *,
    project: Project,
    format: str,
    lines: Iterable[bytes | str],
    actor: User | None,
    source_name: str = "",
) -> ImportReport:
    """Import a file in one of the FORMATS into a project, streaming.

    Prompts and responses are stored as imported (source "imported", model_name where the
    format names the model) and judgments with source "import", attributed to an importer
    annotator: one per Chatbot Arena judge, otherwise one per dataset (`source_name`, by
    default the format's name). Bad lines are reported with their number and reason; the
    rest import. Re-importing the same file creates nothing new.
    """
    format = selectors.format_get(name=format)
    source_name = (source_name or format).strip()[:100]
    namespace = f"dataset:{source_name}"
    report = ImportReport(format=format)
    counted = _Counted(lines)
    judges: dict[tuple[str, str], User] = {}

    def judge_for(namespace: str, key: str, prefix: str) -> User:
        if (namespace, key) not in judges:
            judges[(namespace, key)] = importer_annotator(
                namespace=namespace, key=key, username_hint=f"{prefix}-{key}"
            )
        return judges[(namespace, key)]

    def store_one(number: int, item: Any) -> None:
        if isinstance(item, LineError):
            report.error(number, item.reason)
            return
        report.records += 1
        out = _Outcome()
        try:
            # The importer annotator is created outside the record's savepoint: a bad record
            # rolls back, and the next one must not find a cached user that no longer exists.
            judge = None
            if isinstance(item, Battle):
                judge = judge_for("arena", item.judge or source_name, "arena")
            elif not isinstance(item, Demonstration):
                judge = judge_for("dataset", source_name, "import")
            with transaction.atomic():
                _store(project, item, judge, namespace, out)
        except DomainError as exc:
            report.error(number, exc.message)
            return
        except IntegrityError as exc:
            report.error(number, f"conflicts with existing data: {exc}".splitlines()[0])
            return
        report.created.update(out.created)
        report.updated.update(out.updated)
        if not out.created and not out.updated:
            report.existing += 1

    parsed = iter(PARSERS[format](counted))
    finished = False
    while not finished:
        # Each record has its own savepoint, so a bad one costs only itself; the commit comes
        # once per batch, since a commit (a disk flush) per record made large files crawl.
        with transaction.atomic():
            for _ in range(COMMIT_EVERY):
                step = next(parsed, None)
                if step is None:
                    finished = True
                    break
                store_one(*step)
    report.lines = counted.count
    audit_record(
        actor=actor,
        action="interop.import",
        target=project,
        after={k: v for k, v in report.as_dict().items() if k != "errors"} | {"source": source_name},
    )
    logger.info("imported %s into project %s: %s", format, project.pk, report.as_dict() | {"errors": "..."})
    return report


# --- Label Studio links ----------------------------------------------------------------------


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(
            "url must be an http(s) address such as https://labelstudio.example.com", field="url"
        )
    return url.strip().rstrip("/")


def label_studio_link_save(
    *,
    project: Project,
    kind: str,
    url: str,
    token: str,
    actor: User | None,
    ls_project_id: int | None = None,
    new_project: bool = False,
    enabled: bool = True,
) -> tuple[LabelStudioLink, bool]:
    """Create or change the link of a project's comparisons or demonstrations to a Label Studio
    project. Returns (link, created).

    With no Label Studio project id (a new link, or new_project=True) the next sync creates a
    Label Studio project. Pointing a link at another server or project forgets which tasks were
    pushed there, so they are pushed again; judgments already pulled stay.
    """
    if kind not in LinkKind.values:
        raise InvalidInput(f"kind must be one of {', '.join(LinkKind.values)}", field="kind")
    url = _check_url(url)
    token = token.strip()
    if not token or len(token) > 500 or any(c.isspace() for c in token):
        raise InvalidInput("token must be a Label Studio access token (no spaces)", field="token")
    if ls_project_id is not None and ls_project_id < 1:
        raise InvalidInput("ls_project_id must be a positive number", field="ls_project_id")
    with transaction.atomic():
        link = LabelStudioLink.objects.select_for_update().filter(project=project, kind=kind).first()
        created = link is None
        before = None
        if link is None:
            link = LabelStudioLink(project=project, kind=kind)
        else:
            before = {"url": link.url, "ls_project_id": link.ls_project_id, "enabled": link.enabled}
            moved = ls_project_id is not None and link.ls_project_id != ls_project_id
            if link.url != url or moved or new_project:
                link.tasks.all().delete()
                link.annotations.all().delete()
                link.ls_project_id = None
        link.url, link.token, link.enabled = url, token, enabled
        if ls_project_id is not None:
            link.ls_project_id = ls_project_id
        link.last_error = ""
        link.save()
        audit_record(
            actor=actor,
            action="label_studio.link_save",
            target=link,
            before=before,
            after={"url": url, "kind": kind, "ls_project_id": link.ls_project_id, "enabled": enabled},
        )
    return link, created
