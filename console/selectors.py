"""Reads for the console. Lists are paginated querysets shaped to the indexes in
console/migrations; summaries aggregate in the database, not in Python, wherever the rows
can number in the hundreds of thousands."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, DateField, F, Max, Q, QuerySet
from django.db.models.functions import TruncDate, TruncWeek
from django.utils import timezone

from console import whatif
from console.forms import KINDS, ReviewFilters, ThresholdsInput
from console.models import CurationSettingsRevision
from curation import dedup, rules
from curation.models import CurationDecision, CurationRun, ItemKind, Snapshot, SnapshotItem, Status
from curation.quality import classifier_status
from curation.services import SCHEME, _final_status, curation_settings
from feedback.metrics import krippendorff_alpha_nominal
from feedback.models import ComparisonTask, Judgment, Project, Prompt, Response
from feedback.selectors import AnnotatorStats, annotator_stats
from flywheel.models import AuditLog, Role, User
from training.models import Deployment, ModelKind, ModelVersion, VersionStatus
from training.selectors import deployment_history, version_lineage, versions_for
from training.services import active_deployment
from workers.models import PipelineRun

PAGE_SIZE = 50


def projects() -> QuerySet[Project]:
    return Project.objects.filter(is_active=True).order_by("id")


def paginate(qs: Any, page: str | int | None, per_page: int = PAGE_SIZE) -> Page:
    return Paginator(qs, per_page).get_page(page)


# --- Review queue ----------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)
SEARCH_NOTE = (
    "Search matches words by prefix (PostgreSQL full-text search, English stemming)."
    if connection.vendor == "postgresql"
    else "Search finds items containing every word, anywhere (substring match; no full-text index on SQLite)."
)


def _with_reason(qs: QuerySet[CurationDecision], reason: str) -> QuerySet[CurationDecision]:
    if connection.vendor == "postgresql":
        # jsonb containment, answered by the GIN index on reasons.
        return qs.filter(reasons__contains=[{"rule": reason}])
    # SQLite's JSON has no containment lookup; rule names are distinctive enough to find as
    # quoted strings in the stored JSON.
    return qs.filter(reasons__icontains=f'"{reason}"')


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime(day.year, day.month, day.day))


_HEAVY = ("rules", "signature", "shingles", "embedding")


def _filtered(project: Project, filters: ReviewFilters) -> QuerySet[CurationDecision]:
    """The queue's rows by what the decision itself says, before the item's own filters."""
    qs = CurationDecision.objects.filter(project=project)
    if filters.status != "all":
        qs = qs.filter(status=filters.status)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.reason:
        qs = _with_reason(qs, filters.reason)
    if filters.score_min is not None:
        qs = qs.filter(quality_score__gte=filters.score_min)
    if filters.score_max is not None:
        qs = qs.filter(quality_score__lte=filters.score_max)
    return qs


def _items(model: type[Prompt] | type[Response], project: Project, filters: ReviewFilters) -> QuerySet[Any]:
    """The project's prompts (or responses) that pass the item filters: source, author, dates
    and the text search."""
    qs: QuerySet[Any] = model.objects.filter(project=project)
    if filters.source:
        qs = qs.filter(source=filters.source)
    if filters.author:
        qs = qs.filter(author__username=filters.author)
    if filters.date_from:
        qs = qs.filter(created_at__gte=_day_start(filters.date_from))
    if filters.date_to:
        qs = qs.filter(created_at__lt=_day_start(filters.date_to) + timedelta(days=1))
    words = _WORD.findall(filters.q)[:12]
    if words and connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchVector

        query = SearchQuery(" & ".join(f"{w}:*" for w in words), search_type="raw", config="english")
        qs = qs.annotate(document=SearchVector("text", config="english")).filter(document=query)
    else:
        for word in words:
            qs = qs.filter(text__icontains=word)
    return qs.values("id")


def review_ids(*, project: Project, filters: ReviewFilters, extra: Q | None = None) -> QuerySet[Any]:
    """The ids of the queue's items in order, as a query: pages are cut from ids alone and the
    rows loaded afterwards, so a deep page never joins the rows it skips.

    Filters on the item (source, author, dates, text) select prompts and responses apart and
    the two id lists are united: a decision is one or the other, and an OR across the two
    tables made PostgreSQL scan every decision. Search, on PostgreSQL, is an English tsquery
    where every word is a prefix ("recurs" finds "recursion"), answered by the GIN indexes
    over prompt and response text; elsewhere (SQLite) every word must appear as a
    case-insensitive substring, which scans.
    """
    base = _filtered(project, filters)
    if extra is not None:
        base = base.filter(extra)
    if not (filters.source or filters.author or filters.date_from or filters.date_to or filters.q.strip()):
        return base.values_list("id", flat=True).order_by("id")
    prompts = base.filter(kind=ItemKind.PROMPT, prompt_id__in=_items(Prompt, project, filters))
    responses = base.filter(kind=ItemKind.RESPONSE, response_id__in=_items(Response, project, filters))
    if filters.kind:
        only = prompts if filters.kind == ItemKind.PROMPT else responses
        return only.values_list("id", flat=True).order_by("id")
    # Each side without its model's default ordering: SQLite refuses ORDER BY inside a UNION.
    return (
        prompts.order_by()
        .values_list("id", flat=True)
        .union(responses.order_by().values_list("id", flat=True), all=True)
        .order_by("id")
    )


def decisions_by_ids(ids: list[int]) -> list[CurationDecision]:
    """Rows for a page of the queue, in the order given; the measurements and fingerprints,
    kilobytes per row that no list shows, stay in the database."""
    rows = CurationDecision.objects.filter(id__in=ids).select_related("prompt", "response").defer(*_HEAVY)
    by_id = {row.pk: row for row in rows}
    return [by_id[i] for i in ids if i in by_id]


@dataclass
class Queue:
    page: Page
    current: CurationDecision | None
    position: int | None


def review_queue(
    *, project: Project, filters: ReviewFilters, page: str | int | None, current_id: int | None
) -> Queue:
    """One page of the queue and the item shown beside it: `current_id` when it is on that page,
    else the page's first item."""
    if current_id is not None and page in (None, ""):
        # Open the page that holds the requested item.
        before = review_ids(project=project, filters=filters, extra=Q(id__lt=current_id)).count()
        page = before // PAGE_SIZE + 1
    found = paginate(review_ids(project=project, filters=filters), page)
    items = decisions_by_ids(list(found.object_list))
    found.object_list = items
    current = next((d for d in items if d.pk == current_id), items[0] if items else None)
    position = items.index(current) if current is not None else None
    return Queue(page=found, current=current, position=position)


def next_in_queue(*, project: Project, filters: ReviewFilters, after_id: int) -> int | None:
    """The id the queue moves on to after `after_id` is decided: the next one, else the first."""
    following = review_ids(project=project, filters=filters, extra=Q(id__gt=after_id)).first()
    if following is not None:
        return int(following)
    first = review_ids(project=project, filters=filters, extra=~Q(id=after_id)).first()
    return None if first is None else int(first)


# --- Item detail -----------------------------------------------------------------------------


@dataclass
class RuleRow:
    name: str
    value: Any
    threshold: Any
    passed: bool
    message: str
    applied: bool

    @property
    def shown_value(self) -> str:
        return _num(self.value)

    @property
    def shown_threshold(self) -> str:
        if self.threshold is None:
            return "off"
        if isinstance(self.threshold, list):
            low, high = [*self.threshold, None, None][:2]
            return (
                f"≥ {_num(low)}"
                if high is None
                else f"≤ {_num(high)}"
                if low is None
                else f"{_num(low)} – {_num(high)}"
            )
        return _num(self.threshold)


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, int | float):
        return f"{value:.4g}"
    return str(value)


@dataclass
class ItemDetail:
    decision: CurationDecision
    text: str
    prompt_text: str | None
    rules: list[RuleRow]
    pii: list[dict[str, Any]]
    classifier: str
    cluster: list[CurationDecision]
    cluster_size: int
    history: QuerySet[AuditLog]


CLUSTER_PREVIEW = 50


def decision_detail(*, decision: CurationDecision) -> ItemDetail:
    item = decision.item
    prompt_text = decision.response.prompt.text if decision.response is not None else None
    rows = [
        RuleRow(
            name=str(r.get("name")),
            value=r.get("value"),
            threshold=r.get("threshold"),
            passed=bool(r.get("passed", True)),
            message=str(r.get("message", "")),
            applied=not str(r.get("message", "")).startswith("not applied"),
        )
        for r in decision.rules or []
    ]
    cluster: list[CurationDecision] = []
    size = 0
    if decision.cluster_representative_id is not None:
        members = CurationDecision.objects.filter(
            cluster_representative_id=decision.cluster_representative_id
        ).select_related("prompt", "response")
        size = members.count()
        if size > 1:
            cluster = list(members.order_by("id")[:CLUSTER_PREVIEW])
    history = AuditLog.objects.filter(
        target_type=CurationDecision._meta.label_lower, target_id=str(decision.pk)
    ).select_related("actor")
    return ItemDetail(
        decision=decision,
        text=item.text,
        prompt_text=prompt_text,
        rules=rows,
        pii=list(decision.pii or []),
        classifier=classifier_status(project=decision.project),
        cluster=cluster,
        cluster_size=size,
        history=history,
    )


def decision_get(*, project: Project, decision_id: int) -> CurationDecision | None:
    return (
        CurationDecision.objects.filter(project=project, pk=decision_id)
        .select_related("prompt", "response__prompt", "project", "cluster_representative", "overridden_by")
        .first()
    )


# --- Clusters --------------------------------------------------------------------------------


def clusters_page(*, project: Project, kind: str, page: str | int | None) -> tuple[Page, dict[int, Any]]:
    """Clusters with at least one duplicate, largest first: (page of {representative, size},
    representative decisions by id)."""
    duplicates = CurationDecision.objects.filter(
        project=project, cluster_representative__isnull=False
    ).exclude(cluster_representative_id=F("id"))
    if kind:
        duplicates = duplicates.filter(kind=kind)
    grouped = (
        duplicates.values("cluster_representative_id")
        .annotate(duplicates=Count("id"))
        .order_by("-duplicates", "cluster_representative_id")
    )
    found = paginate(grouped, page)
    ids = [row["cluster_representative_id"] for row in found.object_list]
    reps = CurationDecision.objects.filter(id__in=ids).select_related("prompt", "response").in_bulk()
    return found, reps


@dataclass
class ClusterMember:
    decision: CurationDecision
    text: str
    representative_html: str
    member_html: str
    truncated: bool


@dataclass
class Cluster:
    representative: CurationDecision
    members: list[ClusterMember]
    size: int


def cluster_detail(*, project: Project, decision: CurationDecision, limit: int = 20) -> Cluster | None:
    from console.highlight import word_diff

    rep_id = decision.cluster_representative_id
    if rep_id is None:
        return None
    representative = decision_get(project=project, decision_id=rep_id)
    if representative is None:
        return None
    members_qs = (
        CurationDecision.objects.filter(cluster_representative_id=rep_id)
        .exclude(pk=rep_id)
        .select_related("prompt", "response")
        .order_by("-duplicate_jaccard", "id")
    )
    size = members_qs.count() + 1
    rep_text = representative.item.text
    members = []
    for member in members_qs[:limit]:
        left, right, truncated = word_diff(rep_text, member.item.text)
        members.append(
            ClusterMember(
                decision=member,
                text=member.item.text,
                representative_html=left,
                member_html=right,
                truncated=truncated,
            )
        )
    return Cluster(representative=representative, members=members, size=size)


# --- Thresholds ------------------------------------------------------------------------------


@dataclass
class PreviewExample:
    id: int
    kind: str
    excerpt: str
    before: str
    after: str


@dataclass
class RulePreview:
    name: str
    newly_failing: int
    newly_passing: int
    status_changes: int
    examples: list[PreviewExample]


@dataclass
class ThresholdsPreview:
    items: int
    changed: int
    transitions: list[tuple[str, str, int]]
    rules: list[RulePreview]
    reevaluated: int
    not_curated: int
    changed_fields: dict[str, list[str]]
    near_dup_changed: bool
    new_status: dict[int, str] = field(repr=False, default_factory=dict)

    @property
    def settings_changed(self) -> bool:
        return self.near_dup_changed or any(self.changed_fields.values())

    @property
    def would_reject(self) -> int:
        return sum(n for before, after, n in self.transitions if after == Status.REJECTED)

    @property
    def would_keep(self) -> int:
        return sum(n for before, after, n in self.transitions if after == Status.KEPT)


def _final(override: str, fails_rule: bool, duplicate: bool, quality: float | None, cfg: Any) -> str:
    # curation.services._final_status reads only these three fields; a plain namespace stands in
    # for the model, whose constructor cost seconds over 100,000 items.
    reasons = ([{"rule": "rule:any"}] if fails_rule else []) + (
        [{"rule": "near_duplicate"}] if duplicate else []
    )
    stand_in = SimpleNamespace(override_status=override, reasons=reasons, quality_score=quality)
    return _final_status(cast(CurationDecision, stand_in), cfg)


_SIGNATURE_HEADER = dedup.signature_for_text("header", SCHEME).to_bytes()[: -4 * SCHEME.num_perm]


def _hashvalues(raw: bytes) -> np.ndarray[Any, Any]:
    if raw.startswith(_SIGNATURE_HEADER) and len(raw) == len(_SIGNATURE_HEADER) + 4 * SCHEME.num_perm:
        # Our own scheme, as nearly every row is: skip re-parsing the header 100,000 times.
        return np.frombuffer(raw, dtype="<u4", offset=len(_SIGNATURE_HEADER))
    return dedup.Signature.from_bytes(raw, expected=SCHEME).hashvalues


# A gate change means re-measuring every text of that kind, at a few milliseconds each; past
# this many the preview says so instead of keeping the request busy for minutes.
PREVIEW_REMEASURE_LIMIT = 5000


class PreviewTooLarge(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(f"{count} texts to re-measure")
        self.count = count


def _raw_rows(qs: QuerySet[Any]) -> Any:
    """The rows of a values_list query straight from the cursor, JSON still as text: Django's
    per-row converters were most of the preview's time at 100,000 rows."""
    sql, params = qs.query.sql_with_params()
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(5000):
            yield from rows


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _failed(reasons: list[dict[str, Any]] | None) -> frozenset[str]:
    return frozenset(str(r["rule"])[5:] for r in reasons or [] if str(r.get("rule", "")).startswith("rule:"))


def thresholds_preview(*, project: Project, proposed: ThresholdsInput) -> ThresholdsPreview:
    """What applying `proposed` and re-curating would change, computed from stored data with
    no writes (console.whatif explains how, and what it assumes). Items that were never
    curated are counted apart: their first decision is not previewed.

    Only what the change can affect is read: the reasons (which rules failed), the stored
    measurements of the rules whose limits change, the signatures for the duplicate replay,
    and the texts only when a gate changes. Raises PreviewTooLarge when that would mean
    re-measuring more than PREVIEW_REMEASURE_LIMIT texts.
    """
    cfg = curation_settings(project=project)
    current = {kind: whatif.thresholds_with(kind, (cfg.rule_overrides or {}).get(kind)) for kind in KINDS}
    limits = {kind: whatif.thresholds_with(kind, proposed.rule_overrides.get(kind)) for kind in KINDS}
    affected = {kind: whatif.affected_rules(limits[kind], current[kind]) for kind in KINDS}
    gated = {
        kind
        for kind in KINDS
        if {gate for _, _, gate in whatif.RULE_LIMITS.values() if gate}
        & set(whatif.changed_fields(limits[kind], current[kind]))
    }
    decisions = (
        CurationDecision.objects.filter(project=project).exclude(processed_at=None).exclude(signature=None)
    )
    if gated:
        count = decisions.filter(kind__in=gated).count()
        if count > PREVIEW_REMEASURE_LIMIT:
            raise PreviewTooLarge(count)
    positions = sorted({whatif.RULE_POSITIONS[name] for names in affected.values() for name in names})
    fields = [
        "id",
        "kind",
        "status",
        "override_status",
        "quality_score",
        "reasons",
        "exact_hash",
        "signature",
    ]
    fields += ["cluster_representative_id", *[f"rules__{position}" for position in positions]]
    items: list[whatif.Item] = []
    dedup_items: list[whatif.DedupItem] = []
    for row in _raw_rows(decisions.order_by("id").values_list(*fields)):
        pk, kind, status, override, quality, reasons, ehash, signature, rep, *measured = row
        entries = [_json(m) for m in measured]
        items.append(
            whatif.Item(
                id=pk,
                kind=kind,
                status=status,
                override_status=override,
                quality=quality,
                # Most items failed no rule: decode their reasons only when one did.
                failing=_failed(_json(reasons)) if reasons and "rule:" in str(reasons) else frozenset(),
                rules={str(m["name"]): m for m in entries if isinstance(m, dict) and "name" in m},
                is_duplicate=rep is not None and rep != pk,
            )
        )
        dedup_items.append(
            whatif.DedupItem(
                id=pk,
                kind=kind,
                exact_hash=ehash,
                hashvalues=_hashvalues(bytes(signature or b"")),
                quality=quality,
            )
        )
    not_curated = CurationDecision.objects.filter(project=project).count() - len(items)
    not_curated += Prompt.objects.filter(project=project, curation__isnull=True).count()
    not_curated += Response.objects.filter(project=project, curation__isnull=True).count()

    def shingles_of(ids: list[int]) -> dict[int, Any]:
        found: dict[int, Any] = {}
        for start in range(0, len(ids), 5000):
            for pk, raw in CurationDecision.objects.filter(id__in=ids[start : start + 5000]).values_list(
                "id", "shingles"
            ):
                if raw is not None:
                    found[pk] = dedup.unpack_shingles(bytes(raw))
        return found

    duplicates = whatif.simulate_dedup(
        dedup_items,
        threshold=proposed.near_dup_threshold,
        policy=cfg.representative_policy,
        shingles_of=shingles_of,
    )
    texts: dict[int, str] = {}
    for kind in gated:
        path = "prompt__text" if kind == ItemKind.PROMPT else "response__text"
        texts.update(decisions.filter(kind=kind).values_list("id", path).iterator(chunk_size=2000))

    def evaluate(item: whatif.Item, limits_: rules.RuleThresholds) -> list[rules.RuleResult]:
        text = texts.get(item.id)
        if text is None:
            # A measurement taken under other settings: rare, so one query each is fine.
            text = CurationDecision.objects.select_related("prompt", "response").get(pk=item.id).item.text
        return rules.evaluate(text, limits_, kind=item.kind)  # type: ignore[arg-type]

    result = whatif.preview(
        items,
        proposed=limits,
        current=current,
        duplicates=duplicates,
        evaluate=evaluate,
        final_status=lambda override, fails, dup, quality: _final(override, fails, dup, quality, cfg),
    )
    example_ids = [i for change in result.rules.values() for i in change.examples]
    excerpts = {
        d.pk: d
        for d in CurationDecision.objects.filter(id__in=example_ids).select_related("prompt", "response")
    }
    status_before = {item.id: item.status for item in items if item.id in excerpts}
    rule_rows = [
        RulePreview(
            name=change.name,
            newly_failing=change.newly_failing,
            newly_passing=change.newly_passing,
            status_changes=change.status_changes,
            examples=[
                PreviewExample(
                    id=i,
                    kind=excerpts[i].kind,
                    excerpt=excerpts[i].item.text[:160],
                    before=status_before[i],
                    after=result.new_status[i],
                )
                for i in change.examples
                if i in excerpts
            ],
        )
        for change in sorted(result.rules.values(), key=lambda c: (-c.status_changes, c.name))
    ]
    return ThresholdsPreview(
        items=result.items,
        changed=result.changed,
        transitions=sorted(((a, b, n) for (a, b), n in result.transitions.items()), key=lambda t: -t[2]),
        rules=rule_rows,
        reevaluated=result.reevaluated,
        not_curated=not_curated,
        changed_fields={kind: whatif.changed_fields(current[kind], limits[kind]) for kind in KINDS},
        near_dup_changed=proposed.near_dup_threshold != cfg.near_dup_threshold,
        new_status=result.new_status,
    )


@dataclass
class Progress:
    total: int
    pending: int

    @property
    def done(self) -> int:
        return self.total - self.pending

    @property
    def percent(self) -> int:
        return 100 if not self.total else round(100 * self.done / self.total)

    @property
    def running(self) -> bool:
        return self.pending > 0


def curation_progress(*, project: Project) -> Progress:
    counts = CurationDecision.objects.filter(project=project).aggregate(
        total=Count("id"), pending=Count("id", filter=Q(status=Status.PENDING))
    )
    return Progress(total=counts["total"] or 0, pending=counts["pending"] or 0)


def settings_revisions(*, project: Project) -> QuerySet[CurationSettingsRevision]:
    return CurationSettingsRevision.objects.filter(project=project).select_related("replaced_by")


def last_runs(*, project: Project, limit: int = 5) -> QuerySet[CurationRun]:
    return CurationRun.objects.filter(project=project).order_by("-started_at")[:limit]


# --- Annotators ------------------------------------------------------------------------------

# An annotator who picks the left-hand response this often (or this rarely), over at least
# SAME_SIDE_MIN_VOTES A/B votes, is probably not reading: sides are drawn at random per lease.
SAME_SIDE_SHARE = 0.9
SAME_SIDE_MIN_VOTES = 20
# A median under this many seconds per comparison is faster than two responses can be read.
FAST_MEDIAN_SECONDS = 4.0
FAST_MIN_JUDGMENTS = 10
THROUGHPUT_DAYS = 7


@dataclass
class AnnotatorRow:
    stats: AnnotatorStats
    left_share: float | None
    side_votes: int
    recent: int
    flags: list[str]

    @property
    def per_day(self) -> float:
        return self.recent / THROUGHPUT_DAYS


def _judgment_state(project: Project) -> str:
    """Changes whenever a judgment of the project is added, edited or removed: what the
    judgment-derived numbers are cached under."""
    state = Judgment.objects.filter(task__project=project).aggregate(
        n=Count("id"), last=Max("id"), changed=Max("updated_at")
    )
    raw = f"{state['n']}:{state['last']}:{state['changed']}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _cached(key: str, compute: Any) -> Any:
    # Recomputing these walks every judgment of the project in Python (0.3 s at 20,000 on the
    # bench machine); the key names everything they depend on, so a hit is never stale.
    found = cache.get(key)
    if found is None:
        found = compute()
        cache.set(key, found, timeout=3600)
    return found


def annotator_rows(*, project: Project) -> list[AnnotatorRow]:
    """The annotators table. Cached under the state of the project's judgments, of the users
    (trust, disabled, excluded) and the hour, since the throughput counts the last 7 days."""
    people = hashlib.sha256(
        repr(
            list(
                User.objects.filter(Q(role=Role.ANNOTATOR) | Q(judgments__task__project=project))
                .distinct()
                .order_by("id")
                .values_list("id", "username", "is_active", "judgments_excluded", "trust")
            )
        ).encode()
    ).hexdigest()[:16]
    hour = timezone.now().strftime("%Y%m%d%H")
    key = f"console:annotators:{project.pk}:{_judgment_state(project)}:{people}:{hour}"
    return list(_cached(key, lambda: _annotator_rows(project)))


def _annotator_rows(project: Project) -> list[AnnotatorRow]:
    since = timezone.now() - timedelta(days=THROUGHPUT_DAYS)
    picked_left = Q(choice="a", left_side="a") | Q(choice="b", left_side="b")
    sided = Q(choice__in=["a", "b"]) & ~Q(left_side="")
    counts = {
        row["annotator_id"]: row
        for row in Judgment.objects.filter(task__project=project)
        .values("annotator_id")
        .annotate(
            sided=Count("id", filter=sided),
            left=Count("id", filter=sided & picked_left),
            recent=Count("id", filter=Q(created_at__gte=since)),
        )
    }
    rows = []
    for stats in annotator_stats(project=project):
        row = counts.get(stats.user_id, {"sided": 0, "left": 0, "recent": 0})
        share = row["left"] / row["sided"] if row["sided"] else None
        flags = []
        if stats.flagged:
            flags.append("low trust")
        if (
            share is not None
            and row["sided"] >= SAME_SIDE_MIN_VOTES
            and not (1 - SAME_SIDE_SHARE < share < SAME_SIDE_SHARE)
        ):
            flags.append(f"picks the {'left' if share >= 0.5 else 'right'} side {max(share, 1 - share):.0%}")
        if (
            stats.median_seconds is not None
            and stats.judgments >= FAST_MIN_JUDGMENTS
            and stats.median_seconds < FAST_MEDIAN_SECONDS
        ):
            flags.append(f"median {stats.median_seconds:.1f} s per comparison")
        rows.append(
            AnnotatorRow(
                stats=stats, left_share=share, side_votes=row["sided"], recent=row["recent"], flags=flags
            )
        )
    return rows


# --- Snapshots -------------------------------------------------------------------------------


def snapshots_for(*, project: Project) -> QuerySet[Snapshot]:
    return Snapshot.objects.filter(project=project).select_related("created_by").order_by("-version")


@dataclass
class SnapshotDiff:
    a: Snapshot
    b: Snapshot
    added: int
    removed: int
    unchanged: int
    added_by_reason: list[tuple[str, int]]
    removed_by_reason: list[tuple[str, int]]


Row = tuple[int, int | None, int | None]


def _row_label(row: Row) -> str:
    return "preference pair" if row[2] is not None else "demonstration"


def snapshot_compare(*, a: Snapshot, b: Snapshot) -> SnapshotDiff:
    """Rows (prompt, response, task) in `b` and not in `a`, and the reverse, grouped by why:
    the current curation decision of the items involved, or what else explains it."""
    rows_a: set[Row] = set(
        SnapshotItem.objects.filter(snapshot=a).values_list("prompt_id", "response_id", "task_id")
    )
    rows_b: set[Row] = set(
        SnapshotItem.objects.filter(snapshot=b).values_list("prompt_id", "response_id", "task_id")
    )
    added, removed = rows_b - rows_a, rows_a - rows_b
    task_ids = {row[2] for row in added | removed if row[2] is not None}
    task_responses = {
        pk: (ra, rb)
        for pk, ra, rb in ComparisonTask.objects.filter(id__in=task_ids).values_list(
            "id", "response_a_id", "response_b_id"
        )
    }
    prompt_ids = {row[0] for row in added | removed}
    response_ids = {row[1] for row in added | removed if row[1] is not None}
    response_ids |= {r for pair in task_responses.values() for r in pair}
    decisions: dict[tuple[str, int], tuple[str, list[dict[str, Any]], str, datetime]] = {}
    for kind, prompt_id, response_id, status, reasons, override, created in CurationDecision.objects.filter(
        Q(prompt_id__in=prompt_ids) | Q(response_id__in=response_ids)
    ).values_list("kind", "prompt_id", "response_id", "status", "reasons", "override_status", "created_at"):
        key = (kind, prompt_id if kind == ItemKind.PROMPT else response_id)
        decisions[key] = (status, reasons or [], override, created)

    def items_of(row: Row) -> list[tuple[str, int]]:
        found = [(ItemKind.PROMPT.value, row[0])]
        if row[1] is not None:
            found.append((ItemKind.RESPONSE.value, row[1]))
        if row[2] is not None:
            found += [(ItemKind.RESPONSE.value, r) for r in task_responses.get(row[2], ())]
        return found

    def why_removed(row: Row) -> str:
        for kind, pk in items_of(row):
            status, reasons, override, _ = decisions.get((kind, pk), ("", [], "", timezone.now()))
            if status == Status.REJECTED:
                if override == Status.REJECTED:
                    return f"{kind} rejected by a curator"
                rule = reasons[0]["rule"] if reasons else "classifier"
                return f"{kind} rejected: {rule}"
            if status in (Status.NEEDS_REVIEW, Status.PENDING):
                return f"{kind} {status.replace('_', ' ')}"
        if row[2] is not None:
            return "preference no longer qualifies (votes, agreement or excluded annotators)"
        return "no longer exported"

    def why_added(row: Row) -> str:
        for kind, pk in items_of(row):
            _, _, override, _ = decisions.get((kind, pk), ("", [], "", a.created_at))
            if override == Status.KEPT:
                return f"{kind} kept by a curator"
        if any(
            decisions.get(key, (None, None, None, a.created_at))[3] > a.created_at for key in items_of(row)
        ):
            return f"new since v{a.version}"
        if row[2] is not None:
            return "preference now qualifies (more votes or agreement)"
        return "now kept by the pipeline (settings or duplicates changed)"

    added_reasons = Counter(f"{_row_label(r)}: {why_added(r)}" for r in added)
    removed_reasons = Counter(f"{_row_label(r)}: {why_removed(r)}" for r in removed)
    return SnapshotDiff(
        a=a,
        b=b,
        added=len(added),
        removed=len(removed),
        unchanged=len(rows_a & rows_b),
        added_by_reason=added_reasons.most_common(),
        removed_by_reason=removed_reasons.most_common(),
    )


# --- Models ----------------------------------------------------------------------------------


@dataclass
class VersionRow:
    version: ModelVersion
    lineage: dict[str, Any]
    deployed: bool
    once_deployed: bool

    @property
    def promotable(self) -> bool:
        # training.services.model_force_promote accepts these.
        return self.version.status in (VersionStatus.EVALUATED, VersionStatus.REJECTED, VersionStatus.RETIRED)


def model_rows(*, project: Project) -> dict[str, list[VersionRow]]:
    deployed_ids = set(Deployment.objects.filter(project=project).values_list("version_id", flat=True))
    active_ids = set(
        Deployment.objects.filter(project=project, ended_at__isnull=True).values_list("version_id", flat=True)
    )
    # In ModelKind's order: the view pairs these with ModelKind.choices.
    out: dict[str, list[VersionRow]] = {kind: [] for kind in ModelKind.values}
    for version in versions_for(project_id=project.pk).order_by("kind", "-number")[:200]:
        lineage = version_lineage(version=version)
        out[version.kind].append(
            VersionRow(
                version=version,
                lineage={k: len(v) if isinstance(v, list) else v for k, v in lineage.items()},
                deployed=version.pk in active_ids,
                once_deployed=version.pk in deployed_ids,
            )
        )
    return out


def deployments_for(*, project: Project) -> QuerySet[Deployment]:
    return deployment_history(project_id=project.pk)[:50]


def version_get(*, version_id: int) -> ModelVersion | None:
    return ModelVersion.objects.filter(pk=version_id).select_related("project", "snapshot").first()


# --- Overview --------------------------------------------------------------------------------

OVERVIEW_DAYS = 30
AGREEMENT_WEEKS = 12


def _reason_counts(project: Project) -> list[tuple[str, int]]:
    """Rejected items per reason, counted in SQL: an item with two reasons counts under both."""
    if connection.vendor == "postgresql":
        select = (
            "SELECT r->>'rule', COUNT(*) FROM {table} d CROSS JOIN LATERAL jsonb_array_elements(d.reasons) r"
        )
    else:
        select = "SELECT json_extract(r.value, '$.rule'), COUNT(*) FROM {table} d, json_each(d.reasons) r"
    where = "WHERE d.project_id = %s AND d.status = %s GROUP BY 1 ORDER BY 2 DESC"
    # The table name comes from the model, the values are parameters.
    sql = f"{select} {where}".format(table=connection.ops.quote_name(CurationDecision._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk, Status.REJECTED])
        return [(str(rule), int(n)) for rule, n in cursor.fetchall()]


def _per_day(qs: QuerySet[Any], days: list[date]) -> list[float]:
    counts = dict(
        qs.annotate(day=TruncDate("created_at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    return [float(counts.get(day, 0)) for day in days]


@dataclass
class Overview:
    days: list[date]
    inflow: dict[str, list[float]]
    by_status: dict[str, int]
    reasons: list[tuple[str, int]]
    processed: int
    duplicates: int
    weeks: list[date]
    alpha: list[float | None]
    alpha_units: list[int]
    metrics: dict[str, tuple[list[str], dict[str, list[float | None]]]]
    deployments: dict[str, Deployment | None]
    runs: list[CurationRun]
    versions: list[ModelVersion]
    pipeline_runs: list[PipelineRun]

    @property
    def duplicate_percent(self) -> float | None:
        """Duplicates among the items decided so far, in percent."""
        return 100 * self.duplicates / self.processed if self.processed else None


_METRICS = {
    ModelKind.REWARD: ("accuracy", "length_baseline_accuracy"),
    ModelKind.POLICY: ("win_rate", "win_rate_ci_low"),
}


def weekly_alpha(
    *, project: Project, weeks: int = AGREEMENT_WEEKS
) -> tuple[list[date], list[float | None], list[int]]:
    """Cached under the state of the project's judgments and the current week."""
    key = f"console:alpha:{project.pk}:{weeks}:{_judgment_state(project)}:{timezone.localdate():%G%V}"
    return cast(
        tuple[list[date], list[float | None], list[int]], _cached(key, lambda: _weekly_alpha(project, weeks))
    )


def _weekly_alpha(project: Project, weeks: int) -> tuple[list[date], list[float | None], list[int]]:
    """Krippendorff's alpha per week, over the non-gold judgments created that week."""
    today = timezone.localdate()
    first = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)
    starts = [first + timedelta(weeks=i) for i in range(weeks)]
    units: dict[date, dict[int, list[str]]] = {s: defaultdict(list) for s in starts}
    # The database buckets the judgments by week: per-row date arithmetic in Python was most of
    # this page's time at 20,000 judgments.
    rows = (
        Judgment.objects.filter(task__project=project, task__is_gold=False, created_at__gte=_day_start(first))
        .annotate(week=TruncWeek("created_at", output_field=DateField()))
        .values_list("week", "task_id", "choice")
    )
    for week, task_id, choice in rows.iterator(chunk_size=5000):
        if week in units:
            units[week][task_id].append(choice)
    alphas = [krippendorff_alpha_nominal(units[s].values()) for s in starts]
    paired = [sum(1 for votes in units[s].values() if len(votes) > 1) for s in starts]
    return starts, alphas, paired


def overview(*, project: Project) -> Overview:
    today = timezone.localdate()
    days = [today - timedelta(days=OVERVIEW_DAYS - 1 - i) for i in range(OVERVIEW_DAYS)]
    since = _day_start(days[0])
    inflow = {
        "prompts": _per_day(Prompt.objects.filter(project=project, created_at__gte=since), days),
        "responses": _per_day(Response.objects.filter(project=project, created_at__gte=since), days),
        "judgments": _per_day(Judgment.objects.filter(task__project=project, created_at__gte=since), days),
    }
    decisions = CurationDecision.objects.filter(project=project)
    by_status = dict(decisions.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    processed = sum(n for status, n in by_status.items() if status != Status.PENDING)
    duplicates = (
        decisions.filter(cluster_representative__isnull=False)
        .exclude(cluster_representative_id=F("id"))
        .count()
    )
    weeks, alpha, units = weekly_alpha(project=project)
    metrics: dict[str, tuple[list[str], dict[str, list[float | None]]]] = {}
    for kind, names in _METRICS.items():
        versions = list(
            ModelVersion.objects.filter(project=project, kind=kind)
            .exclude(metrics={})
            .order_by("-number")
            .values_list("number", "metrics")[:20]
        )[::-1]
        labels = [f"v{number}" for number, _ in versions]
        series: dict[str, list[float | None]] = {}
        for name in names:
            series[name] = [
                float(m[name]) if isinstance(m.get(name), int | float) else None for _, m in versions
            ]
        metrics[kind] = (labels, series)
    return Overview(
        days=days,
        inflow=inflow,
        by_status=by_status,
        reasons=_reason_counts(project),
        processed=processed,
        duplicates=duplicates,
        weeks=weeks,
        alpha=alpha,
        alpha_units=units,
        metrics=metrics,
        deployments={kind: active_deployment(project=project, kind=kind) for kind in ModelKind.values},
        runs=list(last_runs(project=project)),
        versions=list(ModelVersion.objects.filter(project=project).order_by("-created_at")[:5]),
        pipeline_runs=list(
            PipelineRun.objects.filter(project=project)
            .select_related("snapshot", "reward_version", "policy_version")
            .order_by("-created_at", "-id")[:5]
        ),
    )


# --- Audit log -------------------------------------------------------------------------------


def audit_page(entries: QuerySet[AuditLog], page: str | int | None) -> Page:
    """A page of the log, cut from ids alone (index-only, even deep in 100,000 rows) and then
    loaded with the actors."""
    found = paginate(entries.values_list("id", flat=True), page)
    ids = list(found.object_list)
    rows = AuditLog.objects.filter(id__in=ids).select_related("actor").in_bulk()
    shown = [rows[i] for i in ids if i in rows]
    for entry in shown:
        # Shown as the JSON that is stored, not as Python's repr of it.
        entry.before_json = "" if entry.before is None else json.dumps(entry.before, ensure_ascii=False)  # type: ignore[attr-defined]
        entry.after_json = "" if entry.after is None else json.dumps(entry.after, ensure_ascii=False)  # type: ignore[attr-defined]
    found.object_list = shown
    return found


def audit_entries(
    *,
    action: str = "",
    actor: str = "",
    target_type: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[AuditLog]:
    qs = AuditLog.objects.order_by("-created_at", "-id")
    if action:
        qs = qs.filter(action=action)
    if actor:
        qs = qs.filter(actor__username=actor)
    if target_type:
        qs = qs.filter(target_type=target_type)
    if date_from:
        qs = qs.filter(created_at__gte=_day_start(date_from))
    if date_to:
        qs = qs.filter(created_at__lt=_day_start(date_to) + timedelta(days=1))
    return qs


def audit_choices() -> tuple[list[str], list[str]]:
    """The actions and target types in the log, for the filter menus."""
    actions = list(AuditLog.objects.order_by().values_list("action", flat=True).distinct())
    types = list(AuditLog.objects.order_by().values_list("target_type", flat=True).distinct())
    return sorted(actions), sorted(types)
