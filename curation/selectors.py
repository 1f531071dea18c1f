from __future__ import annotations

from typing import Any

from django.db.models import Count, F, Q

from curation.models import CurationDecision, Status
from feedback.models import Project, Prompt, Response


def projects_with_pending() -> list[int]:
    pending = set(
        CurationDecision.objects.filter(status=Status.PENDING).values_list("project_id", flat=True).distinct()
    )
    undecided = set(
        Prompt.objects.filter(curation__isnull=True).values_list("project_id", flat=True).distinct()
    )
    undecided |= set(
        Response.objects.filter(curation__isnull=True).values_list("project_id", flat=True).distinct()
    )
    return sorted(pending | undecided)


def curation_summary(*, project: Project) -> dict[str, Any]:
    decisions = CurationDecision.objects.filter(project=project)
    by_status = dict(decisions.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    reasons: dict[str, int] = {}
    for row in decisions.exclude(reasons=[]).values_list("reasons", flat=True).iterator():
        for reason in row:
            reasons[reason["rule"]] = reasons.get(reason["rule"], 0) + 1
    duplicates = decisions.filter(
        ~Q(cluster_representative=None) & ~Q(cluster_representative_id=F("id"))
    ).count()
    return {"by_status": by_status, "reasons": reasons, "duplicates": duplicates}
