"""Label Studio sync: push a project's comparisons (or prompts that need a demonstration) to a
Label Studio project, and pull the annotations people made there back as judgments (or
demonstrations).

A sync pulls first, then pushes. Pulling reads every task of the Label Studio project; a
task carrying a Flywheel id that this link has no record of (its push crashed between Label
Studio creating it and Flywheel recording it) is adopted then, so the push that follows never
creates it twice.

Consistency: each annotation is pulled in its own transaction, in which the judgment and the
record of having pulled that annotation commit together. A sync that fails halfway keeps
what it finished, and the next sync does exactly what is missing. A malformed annotation is
skipped and reported with its id and reason, and tried again next time.

Errors talking to Label Studio are stored on the link (last_error) and logged. Unreachable
servers and 5xx answers raise LabelStudioUnavailable, which the Celery task retries with
backoff; a refused token or a deleted project raise LabelStudioError, which waits for a person.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from feedback import services as feedback_services
from feedback.models import ComparisonTask, Prompt, ResponseSource
from flywheel.errors import Conflict, DomainError, NotFound
from flywheel.models import User
from flywheel.services import audit_record
from interop import selectors
from interop.formats import label_studio as ls_format
from interop.formats.common import BadRecord
from interop.models import (
    ExternalAnnotator,
    LabelStudioAnnotation,
    LabelStudioLink,
    LabelStudioTask,
    LinkKind,
    PulledAs,
)
from interop.services import importer_annotator

logger = logging.getLogger(__name__)

PUSH_BATCH = 100
TIMEOUT_SECONDS = 30
# A sync that has held its claim this long died without releasing it.
CLAIM_EXPIRES = timedelta(hours=1)


class LabelStudioError(DomainError):
    """Label Studio said no (bad token, deleted project, refused request): a person must act."""

    status = 502


class LabelStudioUnavailable(LabelStudioError):
    """Label Studio could not be reached or failed (5xx): worth trying again later."""

    status = 503


@dataclass
class SyncReport:
    ls_project_id: int | None = None
    project_created: bool = False
    pushed: int = 0
    adopted: int = 0
    pulled: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    foreign_tasks: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        self.pulled[outcome] = self.pulled.get(outcome, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "ls_project_id": self.ls_project_id,
            "project_created": self.project_created,
            "pushed": self.pushed,
            "adopted": self.adopted,
            "pulled": dict(sorted(self.pulled.items())),
            "unchanged": self.unchanged,
            "foreign_tasks": self.foreign_tasks,
            "errors": self.errors[:500],
            "error_count": len(self.errors),
        }


# --- Talking to Label Studio -----------------------------------------------------------------


def _client(link: LabelStudioLink) -> Any:
    # The SDK pulls in pandas and more; only a sync pays for it.
    from label_studio_sdk import LabelStudio

    # No SDK retries: the Celery task retries with backoff, and a person pressing "sync now"
    # wants the error at once.
    return LabelStudio(base_url=link.url, api_key=link.token, timeout=TIMEOUT_SECONDS, max_retries=0)


@contextlib.contextmanager
def _talking(link: LabelStudioLink, doing: str) -> Iterator[None]:
    """Turn the SDK's and httpx's exceptions into messages a person can act on."""
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    try:
        yield
    except ApiError as exc:
        code = exc.status_code or 0
        if code in (401, 403):
            raise LabelStudioError(
                f"Label Studio at {link.url} refused the token (HTTP {code}) while {doing}; "
                "check the link's token"
            ) from exc
        if code == 404:
            raise LabelStudioError(
                f"Label Studio at {link.url} answered 404 Not Found while {doing}"
            ) from exc
        if code >= 500:
            raise LabelStudioUnavailable(
                f"Label Studio at {link.url} failed (HTTP {code}) while {doing}"
            ) from exc
        raise LabelStudioError(
            f"Label Studio at {link.url} refused a request (HTTP {code}) while {doing}: {str(exc.body)[:300]}"
        ) from exc
    except httpx.HTTPError as exc:
        raise LabelStudioUnavailable(
            f"Label Studio at {link.url} is unreachable while {doing}: {type(exc).__name__}: {exc}"
        ) from exc


def _ensure_project(link: LabelStudioLink, client: Any, report: SyncReport) -> int:
    from label_studio_sdk.core.api_error import ApiError

    if link.ls_project_id is not None:
        try:
            with _talking(link, f"reading project {link.ls_project_id}"):
                client.projects.get(id=link.ls_project_id)
        except LabelStudioError as exc:
            if isinstance(exc.__cause__, ApiError) and exc.__cause__.status_code == 404:
                raise LabelStudioError(
                    f"Label Studio project {link.ls_project_id} at {link.url} no longer exists (deleted?). "
                    "Save the link with new_project (command: --new-project) to create a new one."
                ) from exc
            raise
        report.ls_project_id = link.ls_project_id
        return link.ls_project_id
    comparisons = link.kind == LinkKind.COMPARISON
    title = f"{link.project.name[:30]} ({'comparisons' if comparisons else 'demonstrations'})"
    with _talking(link, "creating the project"):
        created = client.projects.create(
            title=title,
            description=f"Synced with Flywheel project {link.project_id}; add tasks there, not here.",
            label_config=ls_format.COMPARISON_CONFIG if comparisons else ls_format.DEMONSTRATION_CONFIG,
            expert_instruction=link.project.guidelines,
            show_instruction=bool(link.project.guidelines),
        )
    LabelStudioLink.objects.filter(pk=link.pk).update(ls_project_id=created.id)
    link.ls_project_id = created.id
    report.ls_project_id, report.project_created = created.id, True
    return int(created.id)


# --- Pull ------------------------------------------------------------------------------------


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


class _People:
    """Label Studio users as Flywheel annotators: the Flywheel user with the same email, or else
    an importer annotator created for them. Label Studio is asked once per sync."""

    def __init__(self, link: LabelStudioLink, client: Any) -> None:
        self.link, self.client = link, client
        self.namespace = f"label-studio:{link.url}"
        self._known: dict[int, Any] | None = None
        self._users: dict[int, User] = {}

    def user(self, completed_by: Any) -> User:
        ls_id = completed_by if isinstance(completed_by, int) else _field(completed_by, "id")
        if not isinstance(ls_id, int):
            raise BadRecord("the annotation names no user (completed_by)")
        if ls_id not in self._users:
            self._users[ls_id] = self._find(ls_id)
        return self._users[ls_id]

    def _find(self, ls_id: int) -> User:
        mapped = ExternalAnnotator.objects.filter(namespace=self.namespace, key=str(ls_id)).first()
        if mapped is not None:
            return mapped.user
        if self._known is None:
            with _talking(self.link, "listing users"):
                self._known = {u.id: u for u in self.client.users.list()}
        person = self._known.get(ls_id)
        if person is None:
            raise BadRecord(f"Label Studio user {ls_id} is not in the user list")
        email = (_field(person, "email") or "").strip()
        username = (_field(person, "username") or "").strip()
        # The same address in both systems is the same person. Usernames are not compared:
        # "admin" in Label Studio is nobody in particular here.
        match = User.objects.filter(email__iexact=email).order_by("id").first() if email else None
        return match or importer_annotator(
            namespace=self.namespace,
            key=str(ls_id),
            username_hint=f"ls-{username or email.split('@')[0] or ls_id}",
            email=email,
        )


def _adopt(link: LabelStudioLink, ls_task_id: int, data: dict[str, Any]) -> LabelStudioTask | None:
    """Record a Label Studio task Flywheel pushed but never recorded; None if it is not ours."""
    key = "flywheel_task_id" if link.kind == LinkKind.COMPARISON else "flywheel_prompt_id"
    flywheel_id = data.get(key)
    if not isinstance(flywheel_id, int):
        return None
    if link.kind == LinkKind.COMPARISON:
        task = ComparisonTask.objects.filter(project=link.project_id, pk=flywheel_id).first()
        if task is None or LabelStudioTask.objects.filter(link=link, task=task).exists():
            return None
        left = "b" if data.get("flywheel_left") == "b" else "a"
        return LabelStudioTask.objects.create(link=link, ls_task_id=ls_task_id, task=task, left_side=left)
    prompt = Prompt.objects.filter(project=link.project_id, pk=flywheel_id).first()
    if prompt is None or LabelStudioTask.objects.filter(link=link, prompt=prompt).exists():
        return None
    return LabelStudioTask.objects.create(link=link, ls_task_id=ls_task_id, prompt=prompt)


def _pull_annotation(
    link: LabelStudioLink, mapped: LabelStudioTask, annotation: Any, people: _People, report: SyncReport
) -> str:
    annotation_id = _field(annotation, "id")
    if not isinstance(annotation_id, int):
        raise BadRecord("the annotation has no id")
    stamp = str(_field(annotation, "updated_at") or "")
    seen = LabelStudioAnnotation.objects.filter(link=link, ls_annotation_id=annotation_id).first()
    if seen is not None and seen.ls_updated_at == stamp:
        return "unchanged"
    user = people.user(_field(annotation, "completed_by"))
    external_id = f"label-studio:{link.ls_project_id}:{annotation_id}"
    cancelled = bool(_field(annotation, "was_cancelled"))
    result = _field(annotation, "result")
    record: dict[str, Any] = {"annotator": user, "ls_task": mapped, "ls_updated_at": stamp}
    with transaction.atomic():
        if mapped.task is not None:
            if cancelled:
                feedback_services.skip_import(
                    task=mapped.task,
                    annotator=user,
                    reason="Skipped in Label Studio",
                    left_side=mapped.left_side or "a",
                )
                record |= {"pulled_as": PulledAs.SKIP}
                outcome = "skips"
            else:
                choice, rationale = ls_format.comparison_choice(result, left_side=mapped.left_side or "a")
                lead_time = _field(annotation, "lead_time")
                made_at = _field(annotation, "created_at")
                judgment, status = feedback_services.judgment_import(
                    task=mapped.task,
                    annotator=user,
                    choice=choice,
                    rationale=rationale,
                    left_side=mapped.left_side,
                    external_id=external_id,
                    time_spent_ms=int(lead_time * 1000) if isinstance(lead_time, int | float) else None,
                    made_at=made_at if isinstance(made_at, datetime) else parse_datetime(str(made_at or "")),
                )
                record |= {"pulled_as": PulledAs.JUDGMENT, "judgment": judgment}
                outcome = {"created": "judgments", "updated": "judgments_updated"}.get(status, "unchanged")
        else:
            assert mapped.prompt is not None
            if cancelled:
                record |= {"pulled_as": PulledAs.SKIP}
                outcome = "skips"
            else:
                response, status = feedback_services.demonstration_import(
                    prompt=mapped.prompt,
                    author=user,
                    text=ls_format.demonstration_text(result),
                    external_id=external_id,
                )
                record |= {"pulled_as": PulledAs.DEMONSTRATION, "response": response}
                outcome = "demonstrations" if status == "created" else "unchanged"
        LabelStudioAnnotation.objects.update_or_create(
            link=link, ls_annotation_id=annotation_id, defaults=record
        )
    return outcome


def _pull(link: LabelStudioLink, client: Any, people: _People, report: SyncReport) -> None:
    mapped = {
        row.ls_task_id: row
        for row in LabelStudioTask.objects.filter(link=link).select_related("task", "prompt")
    }
    with _talking(link, "listing tasks and annotations"):
        for ls_task in client.tasks.list(project=link.ls_project_id, fields="all", page_size=100):
            ls_task_id = _field(ls_task, "id")
            data = _field(ls_task, "data") or {}
            row = mapped.get(ls_task_id)
            if row is None:
                row = _adopt(link, ls_task_id, data) if isinstance(data, dict) else None
                if row is None:
                    report.foreign_tasks += 1
                    continue
                mapped[ls_task_id] = row
                report.adopted += 1
            for annotation in _field(ls_task, "annotations") or []:
                try:
                    outcome = _pull_annotation(link, row, annotation, people, report)
                except LabelStudioError:
                    raise
                except (BadRecord, DomainError, IntegrityError) as exc:
                    reason = exc.message if isinstance(exc, DomainError) else str(exc).splitlines()[0]
                    report.errors.append(
                        {"annotation": _field(annotation, "id"), "task": ls_task_id, "reason": reason}
                    )
                    continue
                if outcome == "unchanged":
                    report.unchanged += 1
                else:
                    report.count(outcome)


# --- Push ------------------------------------------------------------------------------------


def _comparisons_to_push(link: LabelStudioLink) -> Any:
    project = link.project
    return (
        ComparisonTask.objects.filter(project=project, is_gold=False)
        .exclude(pk__in=LabelStudioTask.objects.filter(link=link, task__isnull=False).values("task_id"))
        .annotate(judged=Count("judgments"))
        .filter(judged__lt=project.overlap_k)
        .select_related("prompt", "response_a", "response_b")
        .order_by("-priority", "id")
    )


def _prompts_to_push(link: LabelStudioLink) -> Any:
    return (
        Prompt.objects.filter(project=link.project_id)
        .exclude(pk__in=LabelStudioTask.objects.filter(link=link, prompt__isnull=False).values("prompt_id"))
        .exclude(Q(responses__source=ResponseSource.DEMONSTRATION))
        .order_by("id")
    )


def _push(link: LabelStudioLink, client: Any, report: SyncReport) -> None:
    comparisons = link.kind == LinkKind.COMPARISON
    suggest = comparisons and link.project.show_suggestions
    model_version = selectors.reward_model_version(project=link.project) if suggest else ""
    while True:
        # Each batch re-reads what is left, so what was pushed and recorded drops out.
        batch = list((_comparisons_to_push(link) if comparisons else _prompts_to_push(link))[:PUSH_BATCH])
        if not batch:
            return
        payloads, rows = [], []
        for item in batch:
            if comparisons:
                left = ls_format.left_side_for(item.pk)
                payloads.append(
                    ls_format.comparison_payload(
                        task_id=item.pk,
                        prompt=item.prompt.text,
                        response_a=item.response_a.text,
                        response_b=item.response_b.text,
                        left_side=left,
                        p_a=item.suggested_preference if suggest else None,
                        model_version=model_version,
                    )
                )
                rows.append(LabelStudioTask(link=link, task=item, left_side=left, ls_task_id=0))
            else:
                payloads.append(ls_format.demonstration_payload(prompt_id=item.pk, prompt=item.text))
                rows.append(LabelStudioTask(link=link, prompt=item, ls_task_id=0))
        with _talking(link, f"creating {len(payloads)} tasks"):
            answer = client.projects.import_tasks(link.ls_project_id, request=payloads, return_task_ids=True)
        task_ids = list(answer.task_ids or [])
        if len(task_ids) != len(rows):
            raise LabelStudioError(
                f"Label Studio created {len(task_ids)} tasks for the {len(rows)} sent; "
                "the next sync adopts them"
            )
        # Community Label Studio creates an import's tasks in order, with rising ids.
        for row, task_id in zip(rows, sorted(task_ids), strict=True):
            row.ls_task_id = task_id
        LabelStudioTask.objects.bulk_create(rows)
        report.pushed += len(rows)


# --- The sync --------------------------------------------------------------------------------


def label_studio_sync(*, link_id: int, actor: User | None = None, trigger: str = "manual") -> SyncReport:
    """Sync one link now: pull annotations, then push new work. Returns the report, which is
    also stored on the link and in the audit log. Raises NotFound for an unknown link, Conflict
    when a sync of this link is already running, and LabelStudioError (recorded on the link)
    when Label Studio cannot be used."""
    now = timezone.now()
    claimed = (
        LabelStudioLink.objects.filter(pk=link_id)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_EXPIRES))
        .update(claimed_at=now)
    )
    if claimed != 1:
        if not LabelStudioLink.objects.filter(pk=link_id).exists():
            raise NotFound(f"No Label Studio link with id {link_id}")
        raise Conflict("A sync of this link is already running; try again in a minute", code="sync_running")
    link = LabelStudioLink.objects.select_related("project").get(pk=link_id)
    report = SyncReport(ls_project_id=link.ls_project_id)
    error = "the sync was interrupted"
    try:
        client = _client(link)
        _ensure_project(link, client, report)
        _pull(link, client, _People(link, client), report)
        _push(link, client, report)
        error = ""
    except LabelStudioError as exc:
        error = exc.message
        raise
    except Exception as exc:
        error = f"sync failed: {type(exc).__name__}: {exc}"
        raise
    finally:
        finished = timezone.now()
        fields: dict[str, Any] = {
            "claimed_at": None,
            "last_attempt_at": finished,
            "last_error": error,
            "last_report": report.as_dict(),
        }
        if not error:
            fields["last_synced_at"] = finished
        LabelStudioLink.objects.filter(pk=link.pk).update(**fields)
        audit_record(
            actor=actor,
            action="label_studio.sync",
            target=link,
            after={
                **{k: v for k, v in report.as_dict().items() if k != "errors"},
                "trigger": trigger,
                "error": error,
            },
        )
        if error:
            logger.warning("Label Studio sync of link %s failed: %s", link.pk, error)
        else:
            logger.info("Label Studio sync of link %s: %s", link.pk, report.as_dict() | {"errors": "..."})
    return report
