"""Reads for collection: queues, progress, annotator quality, aggregated preferences."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from feedback.metrics import (
    Aggregate,
    Vote,
    is_low_trust,
    krippendorff_alpha_nominal,
    median,
    side_driven_share,
    trust_score,
    weighted_vote,
)
from feedback.models import (
    Assignment,
    AssignmentState,
    ComparisonTask,
    Judgment,
    Project,
    Response,
    ResponseSource,
)
from flywheel.models import Role, User


def projects_for(*, user: User) -> QuerySet[Project]:
    return Project.objects.filter(is_active=True).order_by("id")


def project_queue_size(*, project: Project, annotator: User, now: datetime | None = None) -> int:
    """How many comparisons this annotator could still be given right now."""
    from feedback.services import open_task_count

    now = now or timezone.now()
    return sum(
        open_task_count(project=project, annotator=annotator, gold=gold, now=now) for gold in (False, True)
    )


@dataclass(frozen=True)
class Progress:
    judged: int
    judged_today: int
    skipped: int
    demonstrations: int
    queue: int


def annotator_progress(*, project: Project, annotator: User) -> Progress:
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    judgments = Judgment.objects.filter(annotator=annotator, task__project=project)
    return Progress(
        judged=judgments.count(),
        judged_today=judgments.filter(created_at__gte=today).count(),
        skipped=Assignment.objects.filter(
            annotator=annotator, task__project=project, state=AssignmentState.SKIPPED
        ).count(),
        demonstrations=Response.objects.filter(
            project=project, author=annotator, source=ResponseSource.DEMONSTRATION
        ).count(),
        queue=project_queue_size(project=project, annotator=annotator),
    )


@dataclass(frozen=True)
class Evidence:
    gold_correct: int
    gold_total: int
    agreed: int
    agreement_total: int
    left: int = 0  # A/B choices that went to the response drawn on the left
    sided: int = 0  # A/B choices made with a known side

    @property
    def side_driven(self) -> float:
        return side_driven_share(left=self.left, sided=self.sided)

    @property
    def trust(self) -> float:
        return trust_score(
            gold_correct=self.gold_correct,
            gold_total=self.gold_total,
            agreed=self.agreed,
            agreement_total=self.agreement_total,
            side_driven=self.side_driven,
        )

    @property
    def amount(self) -> int:
        # A side test that passed is evidence too, even where nobody else judged the same tasks.
        return max(self.gold_total + self.agreement_total, self.sided if self.side_driven else 0)


def _judgment_rows(project: Project | None) -> QuerySet[Judgment]:
    qs = Judgment.objects.all()
    if project is not None:
        qs = qs.filter(task__project=project)
    return qs


def annotator_evidence(*, project: Project | None = None) -> dict[int, Evidence]:
    """Gold hits, leave-one-out majority agreement and left-side choices per annotator."""
    rows = _judgment_rows(project).values_list(
        "task_id", "annotator_id", "choice", "left_side", "task__is_gold", "task__gold_answer"
    )
    by_task: dict[int, list[tuple[int, str]]] = defaultdict(list)
    gold: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    sides: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for task_id, annotator_id, choice, left_side, is_gold, gold_answer in rows.iterator():
        if left_side and choice in ("a", "b"):
            sides[annotator_id][1] += 1
            sides[annotator_id][0] += int(choice == left_side)
        if is_gold:
            gold[annotator_id][1] += 1
            gold[annotator_id][0] += int(choice == gold_answer)
        else:
            by_task[task_id].append((annotator_id, choice))
    agree: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for votes in by_task.values():
        if len(votes) < 3:
            # With two votes, "the others" is one person: no majority to agree with.
            continue
        counts = Counter(choice for _, choice in votes)
        for annotator_id, choice in votes:
            others = counts.copy()
            others[choice] -= 1
            ranked = others.most_common(2)
            if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
                continue
            agree[annotator_id][1] += 1
            agree[annotator_id][0] += int(ranked[0][0] == choice)
    users = set(gold) | set(agree) | set(sides)
    return {
        uid: Evidence(
            gold_correct=gold[uid][0] if uid in gold else 0,
            gold_total=gold[uid][1] if uid in gold else 0,
            agreed=agree[uid][0] if uid in agree else 0,
            agreement_total=agree[uid][1] if uid in agree else 0,
            left=sides[uid][0] if uid in sides else 0,
            sided=sides[uid][1] if uid in sides else 0,
        )
        for uid in users
    }


@dataclass(frozen=True)
class AnnotatorStats:
    user_id: int
    username: str
    judgments: int
    gold_accuracy: float | None
    gold_total: int
    agreement: float | None
    agreement_total: int
    median_seconds: float | None
    trust: float
    flagged: bool
    is_active: bool
    judgments_excluded: bool
    left_share: float | None = None  # of A/B choices made with a known side
    sided: int = 0  # A/B choices made with a known side: what left_share and side_driven are over
    side_driven: float = 0.0  # the share of choices that followed the side; 0 unless significant


def annotator_stats(*, project: Project) -> list[AnnotatorStats]:
    evidence = annotator_evidence(project=project)
    times: dict[int, list[float]] = defaultdict(list)
    counts: Counter[int] = Counter()
    for annotator_id, ms in _judgment_rows(project).values_list("annotator_id", "time_spent_ms").iterator():
        counts[annotator_id] += 1
        if ms is not None:
            times[annotator_id].append(ms / 1000)
    users = User.objects.filter(Q(pk__in=counts.keys()) | Q(role=Role.ANNOTATOR)).order_by("username")
    stats = []
    for user in users:
        ev = evidence.get(user.pk, Evidence(0, 0, 0, 0))
        stats.append(
            AnnotatorStats(
                user_id=user.pk,
                username=user.username,
                judgments=counts[user.pk],
                gold_accuracy=ev.gold_correct / ev.gold_total if ev.gold_total else None,
                gold_total=ev.gold_total,
                agreement=ev.agreed / ev.agreement_total if ev.agreement_total else None,
                agreement_total=ev.agreement_total,
                median_seconds=median(times[user.pk]),
                trust=user.trust,
                flagged=is_low_trust(user.trust, ev.amount),
                is_active=user.is_active,
                judgments_excluded=user.judgments_excluded,
                left_share=ev.left / ev.sided if ev.sided else None,
                sided=ev.sided,
                side_driven=ev.side_driven,
            )
        )
    return stats


def project_agreement(*, project: Project) -> float | None:
    """Krippendorff's alpha (nominal) over the non-gold comparisons of a project."""
    units: dict[int, list[str]] = defaultdict(list)
    rows = Judgment.objects.filter(task__project=project, task__is_gold=False).values_list(
        "task_id", "choice"
    )
    for task_id, choice in rows.iterator():
        units[task_id].append(choice)
    return krippendorff_alpha_nominal(units.values())


@dataclass(frozen=True)
class Preference:
    task: ComparisonTask
    aggregate: Aggregate


def aggregated_preferences(*, project: Project, min_votes: int = 1) -> Iterator[Preference]:
    """Trust-weighted majority per task. Judgments of excluded annotators do not vote."""
    tasks = (
        ComparisonTask.objects.filter(project=project, is_gold=False)
        .annotate(n=Count("judgments", filter=Q(judgments__annotator__judgments_excluded=False)))
        .filter(n__gte=min_votes)
        .select_related("prompt", "response_a", "response_b")
        .order_by("id")
    )
    for chunk_start in range(0, tasks.count(), 500):
        chunk = list(tasks[chunk_start : chunk_start + 500])
        votes: dict[int, list[Vote]] = defaultdict(list)
        rows = Judgment.objects.filter(task__in=chunk, annotator__judgments_excluded=False).values_list(
            "task_id", "choice", "strength", "annotator__trust"
        )
        for task_id, choice, strength, trust in rows:
            votes[task_id].append(Vote(choice=choice, weight=trust, strength=strength))
        for task in chunk:
            yield Preference(task=task, aggregate=weighted_vote(votes[task.pk]))


def judgments_for_export(*, project: Project) -> QuerySet[Judgment]:
    return Judgment.objects.filter(task__project=project).select_related("annotator", "task").order_by("id")


def judgment_as_dict(judgment: Judgment) -> dict[str, Any]:
    return {
        "id": judgment.pk,
        "task_id": judgment.task_id,
        "task_external_id": judgment.task.external_id,
        "annotator": judgment.annotator.username,
        "choice": judgment.choice,
        "strength": judgment.strength,
        "rationale": judgment.rationale,
        "left_side": judgment.left_side,
        "time_spent_ms": judgment.time_spent_ms,
        "source": judgment.source,
        "is_gold": judgment.task.is_gold,
        "created_at": judgment.created_at.isoformat(),
    }
