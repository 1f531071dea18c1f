"""Reads for the console. Lists are paginated querysets shaped to the indexes in
console/migrations; summaries aggregate in the database, not in Python, wherever the rows
can number in the hundreds of thousands."""

from __future__ import annotations

import hashlib
import json
import operator
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import reduce
from typing import Any, cast

import numpy as np
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    DateField,
    ExpressionWrapper,
    F,
    Max,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, TruncDate, TruncWeek
from django.utils import timezone

from console import whatif
from console.forms import KINDS, ReviewFilters, ThresholdsInput
from console.models import CurationSettingsRevision
from curation import dedup, rules
from curation.models import (
    CurationDecision,
    CurationRun,
    CurationSettings,
    ItemKind,
    Measurement,
    Snapshot,
    SnapshotItem,
    Status,
)
from curation.quality import classifier_status
from curation.services import SCHEME, curation_settings
from feedback.metrics import krippendorff_alpha_nominal
from feedback.models import ComparisonTask, Judgment, Project, Prompt, Response
from feedback.selectors import AnnotatorStats, annotator_stats
from flywheel.models import AuditLog, Role, User
from training.models import Deployment, ModelKind, ModelVersion, VersionStatus
from training.selectors import deployment_history, version_lineage, versions_for
from training.services import active_deployment
from workers.models import ACTIVE_RUN_STATUSES, PipelineRun, RunStatus

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
    not_curated: int
    changed_fields: dict[str, list[str]]
    near_dup_changed: bool

    @property
    def settings_changed(self) -> bool:
        return self.near_dup_changed or any(self.changed_fields.values())

    @property
    def would_reject(self) -> int:
        return sum(n for before, after, n in self.transitions if after == Status.REJECTED)

    @property
    def would_keep(self) -> int:
        return sum(n for before, after, n in self.transitions if after == Status.KEPT)


EXAMPLES_PER_RULE = 3


def _ids_in(column: str, ids: set[int]) -> Q | None:
    """`column` is one of `ids`, as one query parameter however many there are (a replay can
    move thousands of items in or out of clusters)."""
    if not ids:
        return None
    # A literal, not a list: the driver would adapt a list element by element.
    listed = ",".join(map(str, sorted(ids)))
    if connection.vendor == "postgresql":
        subquery = RawSQL("SELECT unnest(%s::bigint[])", ["{" + listed + "}"])
    else:
        subquery = RawSQL("SELECT value FROM json_each(%s)", ["[" + listed + "]"])
    return Q(**{f"{column}__in": subquery})


def _any(conditions: list[Q | None]) -> Q | None:
    found = [c for c in conditions if c is not None]
    return reduce(operator.or_, found) if found else None


def _fails(name: str, limits: dict[str, rules.RuleThresholds]) -> Q | None:
    """Rule `name` fails under these limits (by kind), as a condition on stored measurements:
    the SQL form of whatif.Failure.holds."""
    kinds_of: dict[whatif.Failure, list[str]] = defaultdict(list)
    for kind, kind_limits in limits.items():
        found = whatif.failure(name, kind_limits)
        if found is not None:
            kinds_of[found].append(kind)
    conditions: list[Q | None] = []
    for found, kinds in kinds_of.items():
        condition = cast(
            Q,
            _any(
                [
                    Q(**{f"{name}__lt": found.below}) if found.below is not None else None,
                    Q(**{f"{name}__gt": found.above}) if found.above is not None else None,
                ]
            ),
        )
        if found.gate is not None:
            condition &= Q(**{f"{found.gate[0]}__gte": found.gate[1]})
        # Most limits are the same for prompts and responses: one comparison serves both.
        conditions.append(condition if len(kinds) == len(limits) else Q(kind__in=kinds) & condition)
    return _any(conditions)


@dataclass(frozen=True)
class _Cause:
    """One reason an item's status changes: a rule that newly fails or passes, or a change of
    duplicate cluster. `failing` and `passing` are the conditions, on one row of the preview."""

    name: str
    failing: Q | None
    passing: Q | None

    @property
    def either(self) -> Q:
        return cast(Q, _any([self.failing, self.passing]))


def duplicates_after_recuration(*, cfg: CurationSettings, threshold: float) -> dict[int, str]:
    """The items a full re-curation at `threshold` would make duplicates, with their reason
    ("exact_duplicate" or "near_duplicate"): whatif.replay_duplicates, per kind, over the
    stored sketches.

    Cached under everything the replay reads: the settings' dedup_seq moves on with every
    item the pipeline decides (and so with every signature, exact hash and quality score it
    stores), and the count of measurements with every item removed or measured apart from
    the pipeline. Previews of rule limits at the threshold in force then skip the replay, and
    console.tasks.preview_warm computes it ahead when a curator opens the thresholds page.
    """
    measured = Measurement.objects.filter(project_id=cfg.project_id).count()
    # index_epoch rather than the project id: a recreated database never reads another's entry.
    state = f"{cfg.index_epoch}:{cfg.dedup_seq}:{measured}"
    key = f"console:dedup-replay:{state}:{threshold!r}:{cfg.representative_policy}"
    return cast(
        dict[int, str], _cached(key, lambda: _replay(cfg.project_id, threshold, cfg.representative_policy))
    )


def _sketches(project_id: int, kind: str) -> tuple[np.ndarray[Any, Any], ...]:
    """Ids (ascending), exact keys, whether each has one, and sketches of a project's measured
    items of one kind, as arrays."""
    rows = (
        Measurement.objects.filter(project_id=project_id, kind=kind)
        .order_by("decision_id")
        .annotate(
            key=Coalesce("exact_key", Value(0)),
            keyed=ExpressionWrapper(Q(exact_key__isnull=False), BooleanField()),
        )
        .values_list("decision_id", "key", "keyed", "minhash_sketch")
    )
    if connection.vendor == "postgresql":
        found = _copied(rows)
        if found is not None:
            return found
    fetched = _fetch(rows)
    return (
        np.fromiter((row[0] for row in fetched), dtype=np.int64, count=len(fetched)),
        np.fromiter((row[1] for row in fetched), dtype=np.int64, count=len(fetched)),
        np.fromiter((row[2] for row in fetched), dtype=bool, count=len(fetched)),
        dedup.unpack_sketches(b"".join(bytes(row[3]) for row in fetched), SCHEME.num_perm),
    )


# One row of `COPY (decision_id, key, keyed, minhash_sketch) TO STDOUT (FORMAT BINARY)`: the
# field count, then each field's length and value, big-endian; the sketch is little-endian.
_COPY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("id_length", ">i4"),
        ("id", ">i8"),
        ("key_length", ">i4"),
        ("key", ">i8"),
        ("keyed_length", ">i4"),
        ("keyed", "u1"),
        ("sketch_length", ">i4"),
        ("sketch", "<u2", (SCHEME.num_perm,)),
    ]
)
_COPY_HEADER = 19  # signature (11 bytes), flags and header extension length (4 each)


def _copied(rows: QuerySet[Any]) -> tuple[np.ndarray[Any, Any], ...] | None:
    """The rows through PostgreSQL's binary COPY, read as one numpy array: a third of the time
    fetching 100,000 rows as Python tuples takes. None if a row is not the expected shape (a
    sketch of another length), for the caller to fetch them the ordinary way."""
    sql, params = rows.query.sql_with_params()
    # Django compiled the query and keeps its values in params; only that text goes in.
    statement = f"COPY ({sql}) TO STDOUT (FORMAT BINARY)"
    data = bytearray()
    connection.ensure_connection()
    with connection.connection.cursor() as cursor, cursor.copy(statement, params) as copy:
        for block in copy:
            data += block
    body = len(data) - _COPY_HEADER - 2  # the trailer is a field count of -1
    extension = int.from_bytes(data[15:19], "big")
    if extension or body % _COPY_ROW.itemsize:
        return None
    found = np.frombuffer(bytes(data), dtype=_COPY_ROW, count=body // _COPY_ROW.itemsize, offset=_COPY_HEADER)
    expected = {
        "fields": 4,
        "id_length": 8,
        "key_length": 8,
        "keyed_length": 1,
        "sketch_length": 2 * SCHEME.num_perm,
    }
    if any((found[name] != value).any() for name, value in expected.items()):
        return None
    return found["id"].astype(np.int64), found["key"].astype(np.int64), found["keyed"] != 0, found["sketch"]


def _replay(project_id: int, threshold: float, policy: str) -> dict[int, str]:
    def load(ids: list[int], full: bool) -> dict[int, whatif.Stored]:
        if not ids:
            return {}
        wanted = CurationDecision.objects.filter(cast(Q, _ids_in("id", set(ids))))
        if not full:
            return {
                pk: whatif.Stored(exact_hash=digest, quality=quality)
                for pk, digest, quality in _fetch(wanted.values_list("id", "exact_hash", "quality_score"))
            }
        return {
            pk: whatif.Stored(
                exact_hash=digest,
                quality=quality,
                hashvalues=_hashvalues(bytes(signature)),
                shingles=dedup.unpack_shingles(bytes(shingles)),
            )
            for pk, digest, quality, signature, shingles in _fetch(
                wanted.values_list("id", "exact_hash", "quality_score", "signature", "shingles")
            )
            if signature is not None and shingles is not None
        }

    duplicates: dict[int, str] = {}
    for kind in KINDS:
        ids, keys, keyed, sketches = _sketches(project_id, kind)
        if not len(ids):
            continue
        outcomes = whatif.replay_duplicates(
            ids,
            keys,
            keyed,
            sketches,
            threshold=threshold,
            policy=policy,
            load=load,
            num_perm=SCHEME.num_perm,
        )
        duplicates.update({pk: outcome.rule for pk, outcome in outcomes.items() if outcome.rule})
    return duplicates


def _fetch(qs: QuerySet[Any]) -> list[tuple[Any, ...]]:
    """All rows of a values_list query. On PostgreSQL in binary, which moves a hundred
    thousand sketches in half the time the text protocol takes (bytea travels as hex there)."""
    sql, params = qs.query.sql_with_params()
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        import psycopg

        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, binary=True)
            return cursor.fetchall()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


_SIGNATURE_HEADER = dedup.signature_for_text("header", SCHEME).to_bytes()[: -4 * SCHEME.num_perm]


def _hashvalues(raw: bytes) -> np.ndarray[Any, Any]:
    if raw.startswith(_SIGNATURE_HEADER) and len(raw) == len(_SIGNATURE_HEADER) + 4 * SCHEME.num_perm:
        # Our own scheme, as nearly every row is: skip re-parsing the header each time.
        return np.frombuffer(raw, dtype="<u4", offset=len(_SIGNATURE_HEADER))
    return dedup.Signature.from_bytes(raw, expected=SCHEME).hashvalues


@dataclass
class _PreviewQuery:
    rows: QuerySet[Any]  # Measurement rows, one per curated item, annotated with new_status
    causes: list[_Cause]


def _preview_query(project: Project, proposed: ThresholdsInput) -> _PreviewQuery:
    cfg = curation_settings(project=project)
    current = {kind: whatif.thresholds_with(kind, (cfg.rule_overrides or {}).get(kind)) for kind in KINDS}
    limits = {kind: whatif.thresholds_with(kind, proposed.rule_overrides.get(kind)) for kind in KINDS}

    duplicates = duplicates_after_recuration(cfg=cfg, threshold=proposed.near_dup_threshold)
    now_duplicate = set(
        CurationDecision.objects.filter(project=project, cluster_representative__isnull=False)
        .exclude(cluster_representative_id=F("id"))
        .values_list("id", flat=True)
    )
    new_exact = {pk for pk, rule in duplicates.items() if rule == "exact_duplicate"} - now_duplicate
    new_near = {pk for pk, rule in duplicates.items() if rule == "near_duplicate"} - now_duplicate
    no_longer = now_duplicate - set(duplicates)
    was_duplicate = Q(decision__cluster_representative__isnull=False) & ~Q(
        decision__cluster_representative_id=F("decision_id")
    )
    leaving = _ids_in("decision_id", no_longer)
    is_duplicate = cast(
        Q,
        _any(
            [
                was_duplicate & ~leaving if leaving else was_duplicate,
                _ids_in("decision_id", new_exact | new_near),
            ]
        ),
    )

    fails = _any([_fails(name, limits) for name in whatif.RULES])
    verdicts: list[When] = [
        When(~Q(decision__override_status=""), then=F("decision__override_status")),
        When(is_duplicate, then=Value(Status.REJECTED)),
    ]
    if fails is not None:
        verdicts.append(When(fails, then=Value(Status.REJECTED)))
    verdicts += [
        When(decision__quality_score__lt=cfg.classifier_reject_below, then=Value(Status.REJECTED)),
        When(decision__quality_score__lt=cfg.classifier_review_below, then=Value(Status.NEEDS_REVIEW)),
    ]
    # The decision's project too, though it is the measurement's: it lets PostgreSQL read the
    # decisions' side from console_decision_preview alone (console/migrations/0005).
    rows = Measurement.objects.filter(project=project, decision__project=project).annotate(
        new_status=Case(*verdicts, default=Value(Status.KEPT), output_field=CharField())
    )

    causes = []
    for name in dict.fromkeys(
        n for kind in KINDS for n in whatif.affected_rules(limits[kind], current[kind])
    ):
        fails_now, failed = _fails(name, limits), _fails(name, current)
        causes.append(
            _Cause(
                name,
                failing=(fails_now & ~failed if failed else fails_now) if fails_now else None,
                passing=(failed & ~fails_now if fails_now else failed) if failed else None,
            )
        )
    causes.append(_Cause("exact_duplicate", failing=_ids_in("decision_id", new_exact), passing=None))
    causes.append(_Cause("near_duplicate", failing=_ids_in("decision_id", new_near), passing=leaving))
    return _PreviewQuery(rows=rows, causes=[c for c in causes if c.failing or c.passing])


def thresholds_preview(*, project: Project, proposed: ThresholdsInput) -> ThresholdsPreview:
    """What applying `proposed` and re-curating would change, computed from stored data with
    no writes (console.whatif explains how, and what it assumes).

    One aggregate query over the stored measurements counts the items by status before and
    after and by cause; a replay of duplicate detection at the proposed threshold supplies the
    items that would join or leave a cluster. Items that were never curated are counted
    apart: their first decision is not previewed.
    """
    cfg = curation_settings(project=project)
    with _without_jit():
        return _thresholds_preview(project, cfg, proposed)


@contextmanager
def _without_jit() -> Iterator[None]:
    """PostgreSQL compiles a query over 100,000 rows to machine code before running it (its
    cost passes jit_above_cost), which takes longer than the query itself (100 ms of 400 on
    the bench): not for these, and only inside this transaction."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        yield


def _thresholds_preview(
    project: Project, cfg: CurationSettings, proposed: ThresholdsInput
) -> ThresholdsPreview:
    query = _preview_query(project, proposed)
    # Each row's causes as bits (2i: cause i newly fails, 2i + 1: it newly passes), so the
    # database evaluates every condition once a row and then groups a few small values.
    bits = [
        Case(When(condition, then=Value(1 << (2 * i + j))), default=Value(0))
        for i, cause in enumerate(query.causes)
        for j, condition in enumerate((cause.failing, cause.passing))
        if condition is not None
    ]
    per_row = query.rows.annotate(
        was=F("decision__status"), becomes=F("new_status"), causes=reduce(operator.add, bits, Value(0))
    ).values("was", "becomes", "causes")
    sql, params = per_row.query.sql_with_params()
    # Django compiled the inner query and keeps its values in params; only that text goes in.
    grouping = f"SELECT was, becomes, causes, COUNT(*) FROM ({sql}) AS per_row GROUP BY was, becomes, causes"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(grouping, params)
        groups: list[tuple[str, str, int, int]] = cursor.fetchall()

    transitions: Counter[tuple[str, str]] = Counter()
    failing: Counter[str] = Counter()
    passing: Counter[str] = Counter()
    for was, becomes, mask, n in groups:
        if was == becomes:
            continue
        transitions[(was, becomes)] += n
        for i, cause in enumerate(query.causes):
            failing[cause.name] += n if mask >> (2 * i) & 1 else 0
            passing[cause.name] += n if mask >> (2 * i + 1) & 1 else 0
        if not mask:
            # A change no rule and no cluster explains: an item waiting in a running
            # re-curation, or one decided under other settings than the ones in force.
            label = "curation in progress" if was == Status.PENDING else "decided under other settings"
            (failing if becomes == Status.REJECTED else passing)[label] += n

    changed = ~Q(decision__status=F("new_status"))
    explained = _any([cause.either for cause in query.causes])
    unnamed = ~explained if explained is not None else Q()
    conditions = {cause.name: cause.either for cause in query.causes}
    conditions["curation in progress"] = unnamed & Q(decision__status=Status.PENDING)
    conditions["decided under other settings"] = unnamed & ~Q(decision__status=Status.PENDING)
    picked = {
        name: list(
            query.rows.filter(changed & conditions[name])
            .order_by("decision_id")
            .values_list("decision_id", "decision__status", "new_status")[:EXAMPLES_PER_RULE]
        )
        for name in failing | passing
    }
    texts = {
        d.pk: d
        for d in CurationDecision.objects.filter(
            id__in=[pk for rows in picked.values() for pk, _, _ in rows]
        ).select_related("prompt", "response")
    }
    rule_rows = [
        RulePreview(
            name=name,
            newly_failing=failing[name],
            newly_passing=passing[name],
            status_changes=failing[name] + passing[name],
            examples=[
                PreviewExample(
                    id=pk, kind=texts[pk].kind, excerpt=texts[pk].item.text[:160], before=before, after=after
                )
                for pk, before, after in rows
                if pk in texts
            ],
        )
        for name, rows in picked.items()
    ]

    items = sum(n for _, _, _, n in groups)
    # Each measurement is one item's; counting beats finding the items with none.
    not_curated = Prompt.objects.filter(project=project).count()
    not_curated += Response.objects.filter(project=project).count() - items
    current = {kind: whatif.thresholds_with(kind, (cfg.rule_overrides or {}).get(kind)) for kind in KINDS}
    limits = {kind: whatif.thresholds_with(kind, proposed.rule_overrides.get(kind)) for kind in KINDS}
    return ThresholdsPreview(
        items=items,
        changed=sum(transitions.values()),
        transitions=sorted(
            ((a, b, n) for (a, b), n in transitions.items()), key=lambda t: (-t[2], t[0], t[1])
        ),
        rules=sorted(rule_rows, key=lambda r: (-r.status_changes, r.name)),
        not_curated=not_curated,
        changed_fields={kind: whatif.changed_fields(current[kind], limits[kind]) for kind in KINDS},
        near_dup_changed=proposed.near_dup_threshold != cfg.near_dup_threshold,
    )


def thresholds_preview_statuses(*, project: Project, proposed: ThresholdsInput) -> dict[int, str]:
    """The status the preview gives each curated item, by decision id: what the tests hold
    a re-curation to."""
    return dict(_preview_query(project, proposed).rows.values_list("decision_id", "new_status"))


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

# A median under this many seconds per comparison is faster than two responses can be read.
FAST_MEDIAN_SECONDS = 4.0
FAST_MIN_JUDGMENTS = 10
THROUGHPUT_DAYS = 7


@dataclass
class AnnotatorRow:
    stats: AnnotatorStats
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
    # For results that take a while to recompute (the annotators table walks every judgment in
    # Python, the preview's duplicate replay bands every signature); the key names everything
    # they depend on, so a hit is never stale.
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
    # v2: the side flag follows feedback's binomial test; rows cached under v1 used a share cut-off.
    key = f"console:annotators:v2:{project.pk}:{_judgment_state(project)}:{people}:{hour}"
    return list(_cached(key, lambda: _annotator_rows(project)))


def _annotator_rows(project: Project) -> list[AnnotatorRow]:
    since = timezone.now() - timedelta(days=THROUGHPUT_DAYS)
    recent = dict(
        Judgment.objects.filter(task__project=project, created_at__gte=since)
        .values("annotator_id")
        .annotate(n=Count("id"))
        .values_list("annotator_id", "n")
    )
    rows = []
    for stats in annotator_stats(project=project):
        flags = []
        if stats.flagged:
            flags.append("low trust")
        # The side flag is feedback's position-bias test (the one that also discounts trust), not
        # a cut-off of our own: the page must flag exactly the people whose votes lose weight.
        if stats.side_driven and stats.left_share is not None:
            share = stats.left_share
            flags.append(f"picks the {'left' if share >= 0.5 else 'right'} side {max(share, 1 - share):.0%}")
        if (
            stats.median_seconds is not None
            and stats.judgments >= FAST_MIN_JUDGMENTS
            and stats.median_seconds < FAST_MEDIAN_SECONDS
        ):
            flags.append(f"median {stats.median_seconds:.1f} s per comparison")
        rows.append(AnnotatorRow(stats=stats, recent=recent.get(stats.user_id, 0), flags=flags))
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


# --- Pipeline runs ---------------------------------------------------------------------------


@dataclass
class StepRow:
    name: str
    status: str
    seconds: float | None
    attempts: int
    note: str
    error: str


@dataclass
class RunRow:
    run: PipelineRun
    steps: list[StepRow]

    @property
    def seconds(self) -> float | None:
        run = self.run
        if run.started_at is None:
            return None
        return ((run.finished_at or timezone.now()) - run.started_at).total_seconds()

    @property
    def retryable(self) -> bool:
        return self.run.status == RunStatus.FAILED


def _step_seconds(step: dict[str, Any]) -> float | None:
    if step.get("seconds") is not None:
        return float(step["seconds"])
    # A failed step records when it stopped, not for how long it ran.
    started, finished = step.get("started_at"), step.get("finished_at")
    if started and finished:
        return (datetime.fromisoformat(str(finished)) - datetime.fromisoformat(str(started))).total_seconds()
    return None


def pipeline_runs_page(*, project: Project, page: str | int | None) -> tuple[Page, list[RunRow]]:
    """A project's retraining runs, newest first, a page at a time, with each step's outcome
    and duration."""
    runs = PipelineRun.objects.filter(project=project).select_related(
        "snapshot", "reward_version", "policy_version", "retry_of"
    )
    found = paginate(runs.order_by("-created_at", "-id"), page, per_page=20)
    rows = [
        RunRow(
            run=run,
            steps=[
                StepRow(
                    name=str(step.get("name", "")),
                    status=str(step.get("status", "")),
                    seconds=_step_seconds(step),
                    attempts=int(step.get("attempts") or 0),
                    note=str(step.get("note") or ""),
                    error=str(step.get("error") or ""),
                )
                for step in run.steps
            ],
        )
        for run in found.object_list
    ]
    return found, rows


def pipeline_run_active(*, project: Project) -> PipelineRun | None:
    return PipelineRun.objects.filter(project=project, status__in=ACTIVE_RUN_STATUSES).first()


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
