"""Reads for interop: a project's data as the records each format writes, and link status.

Exports agree with the rest of Flywheel on what counts: preferences are the trust-weighted
aggregate (feedback.selectors.aggregated_preferences), gold tasks are left out, and the
judgments of annotators a curator excluded do not count.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from django.db.models import Q, QuerySet

from feedback.models import Choice, Judgment, Project, Prompt, Response, ResponseSource
from feedback.selectors import aggregated_preferences
from flywheel.errors import InvalidInput, NotFound
from interop.formats import arena, hh, oasst, trl
from interop.formats.common import Battle, Demonstration, Preference
from interop.formats.registry import FORMATS, PARSERS, schema_for, style_for
from interop.models import ExternalAnnotator, LabelStudioLink


def project_get(*, project_id: int) -> Project:
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        raise NotFound(f"No project with id {project_id}")
    return project


def format_get(*, name: str) -> str:
    if name not in PARSERS:
        raise NotFound(f"No format named {name!r}; the formats are {', '.join(FORMATS)}")
    return name


def preference_rows(*, project: Project) -> Iterator[Preference]:
    """Every comparison with a clear winner, oldest first."""
    for preference in aggregated_preferences(project=project):
        task, winner = preference.task, preference.aggregate.winner
        if winner not in (Choice.A, Choice.B):
            continue
        chosen, rejected = (
            (task.response_a, task.response_b) if winner == Choice.A else (task.response_b, task.response_a)
        )
        yield Preference(prompt=task.prompt.text, chosen=chosen.text, rejected=rejected.text)


def demonstration_rows(*, project: Project) -> Iterator[Demonstration]:
    """Human demonstrations, and the answers imported from SFT datasets (external ids "sft:")."""
    responses = (
        Response.objects.filter(project=project)
        .filter(
            Q(source=ResponseSource.DEMONSTRATION)
            | Q(source=ResponseSource.IMPORTED, external_id__startswith="sft:")
        )
        .select_related("prompt")
        .order_by("id")
    )
    for response in responses.iterator(chunk_size=1000):
        yield Demonstration(prompt=response.prompt.text, completion=response.text)


def _counted_judgments(project: Project) -> QuerySet[Judgment]:
    return Judgment.objects.filter(
        task__project=project, task__is_gold=False, annotator__judgments_excluded=False
    )


def _question_id(prompt: Prompt) -> str:
    if prompt.external_id.startswith("arena:q:"):
        return prompt.external_id.removeprefix("arena:q:")
    if prompt.external_id:
        return prompt.external_id
    return "flywheel-" + hashlib.sha256(prompt.text.encode()).hexdigest()[:24]


def battle_rows(*, project: Project) -> Iterator[Battle]:
    """Every counted judgment as a Chatbot Arena vote, in the order they were made."""
    judges = dict(ExternalAnnotator.objects.filter(namespace="arena").values_list("user_id", "key"))
    judgments = (
        _counted_judgments(project)
        .select_related("annotator", "task__prompt", "task__response_a", "task__response_b")
        .order_by("created_at", "id")
    )
    for judgment in judgments.iterator(chunk_size=1000):
        task = judgment.task
        yield Battle(
            question_id=_question_id(task.prompt),
            model_a=task.response_a.model_name or task.response_a.source,
            model_b=task.response_b.model_name or task.response_b.source,
            winner=judgment.choice,
            judge=judges.get(judgment.annotator_id, judgment.annotator.username),
            prompt=task.prompt.text,
            response_a=task.response_a.text,
            response_b=task.response_b.text,
            tstamp=judgment.created_at.timestamp(),
        )


def _message_id(external_id: str) -> str:
    return external_id.removeprefix("oasst:") if external_id.startswith("oasst:") else ""


def prompt_groups(*, project: Project) -> Iterator[oasst.PromptGroup]:
    """Each judged prompt with its judged responses, scored by trust-weighted wins: a win is
    worth the judge's trust, a tie half of it to each side, "both bad" nothing."""
    rows = (
        _counted_judgments(project)
        .order_by("task__prompt_id", "task_id", "id")
        .values_list(
            "task__prompt_id", "task__response_a_id", "task__response_b_id", "choice", "annotator__trust"
        )
    )
    current: int | None = None
    scores: dict[int, float] = {}

    def group(prompt_id: int, scores: dict[int, float]) -> oasst.PromptGroup:
        prompt = Prompt.objects.get(pk=prompt_id)
        responses = Response.objects.filter(pk__in=scores).order_by("id")
        return oasst.PromptGroup(
            message_id=_message_id(prompt.external_id),
            prompt=prompt.text,
            replies=tuple(
                oasst.ScoredReply(
                    message_id=_message_id(response.external_id),
                    text=response.text,
                    score=scores[response.pk],
                )
                for response in responses
            ),
        )

    for prompt_id, a_id, b_id, choice, trust in rows.iterator(chunk_size=2000):
        if prompt_id != current:
            if current is not None:
                yield group(current, scores)
            current, scores = prompt_id, defaultdict(float)
        scores[a_id] += trust if choice == Choice.A else trust / 2 if choice == Choice.TIE else 0.0
        scores[b_id] += trust if choice == Choice.B else trust / 2 if choice == Choice.TIE else 0.0
    if current is not None:
        yield group(current, scores)


def export_lines(
    *, project: Project, format: str, style: str | None = None, typed: bool = False
) -> Iterator[str]:
    """A project's data in `format`, as JSON Lines. `typed` keeps every value of a column the same
    type, as a Parquet file or a Hugging Face dataset needs (Arena question ids become strings)."""
    format = format_get(name=format)
    try:
        style = style_for(format, style)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="style") from None
    if format == "trl-preference":
        return trl.dump_preferences(preference_rows(project=project), style=style)
    if format == "hh":
        return hh.dump_hh(preference_rows(project=project))
    if format == "trl-sft":
        return trl.dump_sft(demonstration_rows(project=project), style=style)
    if format == "arena":
        return arena.dump_battles(battle_rows(project=project), numeric_ids=not typed)
    # Trees merge prompts that share opening turns, so every group is read before the first line.
    return oasst.dump_trees(oasst.build_trees(prompt_groups(project=project)))


def export_schema(*, format: str, style: str | None = None) -> dict[str, Any] | None:
    return schema_for(format, style_for(format, style))


# --- Label Studio ----------------------------------------------------------------------------


def label_studio_links(*, project: Project) -> QuerySet[LabelStudioLink]:
    return LabelStudioLink.objects.filter(project=project).order_by("kind")


def label_studio_link_as_dict(link: LabelStudioLink) -> dict[str, Any]:
    """Everything about a link but its token."""
    return {
        "id": link.pk,
        "project": link.project_id,
        "kind": link.kind,
        "url": link.url,
        "ls_project_id": link.ls_project_id,
        "enabled": link.enabled,
        "syncing": link.claimed_at is not None,
        "last_attempt_at": link.last_attempt_at.isoformat() if link.last_attempt_at else None,
        "last_synced_at": link.last_synced_at.isoformat() if link.last_synced_at else None,
        "last_error": link.last_error,
        "last_report": link.last_report,
        "tasks_pushed": link.tasks.count(),
        "annotations_pulled": link.annotations.count(),
    }


def reward_model_version(*, project: Project) -> str:
    """The name Label Studio shows for the reward model's pre-annotations."""
    from training.models import Deployment, ModelKind

    deployment = (
        Deployment.objects.filter(project=project, kind=ModelKind.REWARD, ended_at__isnull=True)
        .select_related("version")
        .first()
    )
    return f"flywheel-reward-v{deployment.version.number}" if deployment else "flywheel-reward"


def label_studio_link_ids(*, project: Project) -> list[int]:
    return list(
        LabelStudioLink.objects.filter(project=project, enabled=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
