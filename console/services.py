"""Writes the console makes beyond the curation and training services it calls.

Each function is one transaction with an audit row (who, before, after, why). Single overrides,
clusters, snapshots, promotions and rollbacks go through their own apps' services, which audit
themselves; this module adds bulk overrides, threshold changes and annotator controls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from console.models import CurationSettingsRevision
from curation import rules
from curation.models import CurationDecision, CurationSettings, Status
from curation.services import MAX_REASON_CHARS, curation_settings, decision_override, project_recurate_mark
from feedback.models import Assignment, AssignmentState, Project
from feedback.validation import clean_optional_text
from flywheel.errors import Conflict, InvalidInput, NotFound
from flywheel.models import Role, User
from flywheel.services import audit_record

# --- Review ----------------------------------------------------------------------------------


def decisions_bulk_override(
    *, project: Project, decision_ids: list[int], actor: User, status: str, reason: str = ""
) -> int:
    """Override several decisions at once: all of them, or none if one cannot be overridden."""
    if status not in (Status.KEPT, Status.REJECTED):
        raise InvalidInput("status must be kept or rejected", field="status")
    ids = sorted(set(decision_ids))
    if not ids:
        raise InvalidInput("Select at least one item", field="ids")
    with transaction.atomic():
        found = CurationDecision.objects.filter(project=project, id__in=ids).count()
        if found != len(ids):
            raise NotFound("Some selected items are not in this project")
        for decision_id in ids:
            decision_override(decision_id=decision_id, actor=actor, status=status, reason=reason)
    return len(ids)


# --- Thresholds ------------------------------------------------------------------------------


def _settings_state(cfg: CurationSettings) -> dict[str, Any]:
    return {"rule_overrides": cfg.rule_overrides or {}, "near_dup_threshold": cfg.near_dup_threshold}


def _validated(
    rule_overrides: dict[str, dict[str, Any]], near_dup_threshold: float
) -> dict[str, dict[str, Any]]:
    unknown = sorted(set(rule_overrides) - {"prompt", "response"})
    if unknown:
        raise InvalidInput(f"unknown item kinds: {', '.join(unknown)}", field="rule_overrides")
    for kind, overrides in rule_overrides.items():
        try:
            rules.thresholds_for(kind, overrides)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise InvalidInput(str(exc), field="rule_overrides") from exc
        for name, value in overrides.items():
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise InvalidInput(f"{kind} {name} must be a number of at least 0", field=f"{kind}.{name}")
    if not 0 < near_dup_threshold <= 1:
        raise InvalidInput(
            "The near-duplicate threshold must be above 0 and at most 1", field="near_dup_threshold"
        )
    return {kind: dict(values) for kind, values in rule_overrides.items() if values}


@dataclass(frozen=True)
class ThresholdsApplied:
    revision: CurationSettingsRevision
    marked: int


def thresholds_apply(
    *,
    project: Project,
    actor: User,
    rule_overrides: dict[str, dict[str, Any]],
    near_dup_threshold: float,
    reason: str,
    recurate: bool = True,
) -> ThresholdsApplied:
    """Save a project's rule thresholds and near-duplicate threshold, keep the old ones as a
    revision, send every item back through the pipeline and queue the re-curation.

    The settings row is locked first, as the pipeline locks it, so no batch decides items
    with half-old, half-new settings.
    """
    overrides = _validated(rule_overrides, near_dup_threshold)
    reason = clean_optional_text(reason, field="reason", max_chars=MAX_REASON_CHARS)
    curation_settings(project=project)
    with transaction.atomic():
        cfg = CurationSettings.objects.select_for_update().get(project=project)
        before = _settings_state(cfg)
        after = {"rule_overrides": overrides, "near_dup_threshold": near_dup_threshold}
        if before == after:
            raise Conflict("These are the settings in force already; nothing to apply")
        revision = CurationSettingsRevision.objects.create(
            project=project,
            rule_overrides=before["rule_overrides"],
            near_dup_threshold=before["near_dup_threshold"],
            replaced_by=actor,
            reason=reason,
        )
        cfg.rule_overrides = overrides
        cfg.near_dup_threshold = near_dup_threshold
        cfg.save(update_fields=["rule_overrides", "near_dup_threshold", "updated_at"])
        audit_record(
            actor=actor,
            action="curation.thresholds",
            target=cfg,
            before=before,
            after={**after, "revision": revision.pk},
            reason=reason,
        )
        marked = project_recurate_mark(project=project, actor=actor) if recurate else 0
        if recurate:
            from curation.tasks import curate_project

            curate_project.delay_on_commit(project.pk, "recurate")
    return ThresholdsApplied(revision=revision, marked=marked)


def thresholds_restore(
    *, project: Project, actor: User, reason: str, revision_id: int | None = None
) -> ThresholdsApplied:
    """Put back the settings a revision holds (the latest one by default: undo the last change).
    Restoring is itself a change: the settings it replaces become a revision in turn."""
    revisions = CurationSettingsRevision.objects.filter(project=project)
    revision = revisions.filter(pk=revision_id).first() if revision_id else revisions.first()
    if revision is None:
        raise NotFound("No earlier settings to restore for this project")
    return thresholds_apply(
        project=project,
        actor=actor,
        rule_overrides=revision.rule_overrides,
        near_dup_threshold=revision.near_dup_threshold,
        reason=reason or f"restore the settings saved at {revision.created_at:%Y-%m-%d %H:%M}",
    )


# --- Annotators ------------------------------------------------------------------------------


def _annotator(actor: User, user: User) -> None:
    if user.pk == actor.pk:
        raise Conflict("You cannot change your own account here")
    if user.role != Role.ANNOTATOR:
        raise Conflict("Only annotators are managed here; roles are changed in the admin")


def annotator_set_active(*, actor: User, user: User, active: bool, reason: str) -> User:
    """Disable an annotator (they can no longer sign in, and their open leases are given back
    so others get those tasks) or enable them again. Their judgments stay."""
    _annotator(actor, user)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        before = {"is_active": user.is_active}
        if user.is_active == active:
            raise Conflict(f"{user.username} is already {'active' if active else 'disabled'}")
        user.is_active = active
        user.save(update_fields=["is_active"])
        released = 0
        if not active:
            released = Assignment.objects.filter(annotator=user, state=AssignmentState.ACTIVE).update(
                state=AssignmentState.EXPIRED, closed_at=timezone.now()
            )
        audit_record(
            actor=actor,
            action="user.set_active",
            target=user,
            before=before,
            after={"is_active": active, "leases_released": released},
            reason=reason,
        )
    return user


def annotator_set_excluded(*, actor: User, user: User, excluded: bool, reason: str) -> User:
    """Keep an annotator's judgments out of future snapshots (or let them back in). Snapshots
    already taken are frozen and keep what they hold."""
    _annotator(actor, user)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        before = {"judgments_excluded": user.judgments_excluded}
        if user.judgments_excluded == excluded:
            raise Conflict(
                f"{user.username}'s judgments are already {'excluded' if excluded else 'included'}"
            )
        user.judgments_excluded = excluded
        user.save(update_fields=["judgments_excluded"])
        audit_record(
            actor=actor,
            action="user.exclude_judgments",
            target=user,
            before=before,
            after={"judgments_excluded": excluded},
            reason=reason,
        )
    return user
