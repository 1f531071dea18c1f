"""Curation: every prompt and response gets a CurationDecision, and snapshots freeze the
kept data. The arithmetic lives in plain modules (text, dedup, rules, pii, classifier);
this module adds the database, the locking and the audit trail."""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from curation import dedup, pii, rules
from curation.models import (
    CurationDecision,
    CurationRun,
    CurationSettings,
    ItemKind,
    Measurement,
    QualityModel,
    Status,
)
from curation.text import exact_hash, exact_key
from feedback.models import Project, Prompt, Response
from feedback.validation import clean_optional_text
from flywheel.errors import Conflict, InvalidInput, NotFound
from flywheel.models import User
from flywheel.services import audit_record

logger = logging.getLogger(__name__)

PIPELINE_VERSION = "curation-2"  # 2: numbers and maths are not words (curation.rules)
CLAIM_TTL = timedelta(minutes=15)
BATCH_SIZE = 200
SCHEME = dedup.SignatureScheme()


# --- Settings --------------------------------------------------------------------------------


def curation_settings(*, project: Project) -> CurationSettings:
    found, _ = CurationSettings.objects.get_or_create(project=project)
    return found


# --- Intake and claiming ---------------------------------------------------------------------


def decisions_ensure(*, project_id: int) -> int:
    """Create pending decisions for every prompt and response that has none yet."""
    prompts = Prompt.objects.filter(project_id=project_id, curation__isnull=True).values_list("id", flat=True)
    responses = Response.objects.filter(project_id=project_id, curation__isnull=True).values_list(
        "id", flat=True
    )
    rows = [CurationDecision(project_id=project_id, kind=ItemKind.PROMPT, prompt_id=pk) for pk in prompts]
    rows += [
        CurationDecision(project_id=project_id, kind=ItemKind.RESPONSE, response_id=pk) for pk in responses
    ]
    # A concurrent intake may create some of the same rows; the one-to-one keys make that a no-op.
    CurationDecision.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return len(rows)


def decisions_claim(
    *, project_id: int, token: str, limit: int = BATCH_SIZE, now: datetime | None = None
) -> list[int]:
    """Claim up to `limit` pending decisions. A claim older than CLAIM_TTL is presumed dead
    (its worker crashed) and can be taken over."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            CurationDecision.objects.filter(project_id=project_id, status=Status.PENDING)
            # A redelivered task carries the same token, so it resumes its own claims at once.
            .filter(Q(claim_token="") | Q(claim_token=token) | Q(claimed_at__lt=now - CLAIM_TTL))
            .order_by("id")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:limit]
        )
        CurationDecision.objects.filter(id__in=ids).update(claim_token=token, claimed_at=now)
    return ids


# --- Measuring -------------------------------------------------------------------------------


@dataclass
class _Measured:
    decision: CurationDecision
    text: str
    dedup_text: str
    measures: rules.Measures
    rules: list[rules.RuleResult]
    pii: list[dict[str, Any]]
    exact_hash: str
    signature: dedup.Signature
    shingles: Any
    quality: float | None = None


def _dedup_text(decision: CurationDecision) -> str:
    # A response is a duplicate only together with its prompt: two prompts may legitimately
    # share the answer "I don't know", but the same demonstration twice is one demonstration.
    if decision.kind == ItemKind.RESPONSE:
        response = decision.response
        assert response is not None
        return f"{response.prompt.text}\n\n{response.text}"
    return decision.item.text


def _measure(decisions: list[CurationDecision], cfg: CurationSettings) -> list[_Measured]:
    texts = [d.item.text for d in decisions]
    dedup_texts = [_dedup_text(d) for d in decisions]
    signatures = dedup.compute_signatures(dedup_texts, SCHEME)
    measured = []
    for decision, text, dtext, signature in zip(decisions, texts, dedup_texts, signatures, strict=True):
        limits = rules.thresholds_for(decision.kind, (cfg.rule_overrides or {}).get(decision.kind))  # type: ignore[arg-type]
        measures = rules.measure(text)
        measured.append(
            _Measured(
                decision=decision,
                text=text,
                dedup_text=dtext,
                measures=measures,
                rules=rules.judge(measures, limits),
                pii=[{"kind": m.kind, "start": m.start, "end": m.end} for m in pii.find_pii(text)],
                exact_hash=exact_hash(dtext),
                signature=signature,
                shingles=dedup.shingle_fingerprints(dtext, SCHEME.shingle_size),
            )
        )
    _score_quality(measured, cfg)
    return measured


def _score_quality(measured: list[_Measured], cfg: CurationSettings) -> None:
    model_row = QualityModel.objects.filter(project_id=cfg.project_id, is_active=True).first()
    if model_row is None or not measured:
        return
    from curation import classifier, embeddings
    from curation.quality import load_quality_model

    model = load_quality_model(model_row)
    if model is None:
        return
    vectors = embeddings.embed([m.text for m in measured])
    for item, vector, prob in zip(
        measured, vectors, classifier.keep_probability(model, vectors), strict=True
    ):
        item.quality = float(prob)
        item.decision.embedding = embeddings.to_bytes(vector)


# --- The near-duplicate index ----------------------------------------------------------------


class _IndexCache:
    """Per-process LSH indexes, topped up from the database under the project lock.

    Each decision gets a per-project `dedup_seq` when it is indexed, in lock order, so
    "everything after seq N" is a complete description of what an index is missing. With
    REDIS_URL the index and its watermark live in Redis and every worker shares them.
    """

    def __init__(self) -> None:
        self._memory: dict[tuple[int, str, float], tuple[dedup.NearDupIndex, int]] = {}

    def get(self, *, cfg: CurationSettings, kind: str, threshold: float) -> tuple[dedup.NearDupIndex, int]:
        key = (cfg.project_id, kind, threshold)
        if settings.REDIS_URL:
            name = _index_name(cfg.index_epoch, kind, threshold)
            index = dedup.NearDupIndex(
                scheme=SCHEME, threshold=threshold, redis_url=settings.REDIS_URL, name=name
            )
            raw = index._redis.get(_watermark_key(name))
            return index, int(raw or 0)
        if key not in self._memory:
            self._memory[key] = (dedup.NearDupIndex(scheme=SCHEME, threshold=threshold), 0)
        return self._memory[key]

    def set_watermark(
        self, *, cfg: CurationSettings, kind: str, threshold: float, index: dedup.NearDupIndex, seq: int
    ) -> None:
        key = (cfg.project_id, kind, threshold)
        if settings.REDIS_URL:
            index._redis.set(_watermark_key(_index_name(cfg.index_epoch, kind, threshold)), seq)
        else:
            self._memory[key] = (index, seq)

    def forget(self, *, project_id: int) -> None:
        for key in [k for k in self._memory if k[0] == project_id]:
            del self._memory[key]


def _index_name(epoch: str, kind: str, threshold: float) -> str:
    return f"{epoch}.{kind}.t{threshold:g}"


def _watermark_key(name: str) -> str:
    return f"flywheel:lsh-watermark:{SCHEME.id}:{name}"


INDEXES = _IndexCache()


def _top_up(index: dedup.NearDupIndex, *, project_id: int, kind: str, after_seq: int) -> int:
    rows = (
        CurationDecision.objects.filter(project_id=project_id, kind=kind, dedup_seq__gt=after_seq)
        .exclude(signature=None)
        .order_by("dedup_seq")
        .values_list("id", "signature", "dedup_seq")
    )
    last = after_seq
    batch = []
    for pk, raw, seq in rows.iterator(chunk_size=2000):
        if pk not in index and raw is not None:
            batch.append((pk, dedup.Signature.from_bytes(bytes(raw), expected=SCHEME)))
        last = seq or last
    if batch:
        index.insert_many(batch)
    return last


def _fetch_shingles(keys: list[Any]) -> dict[Any, Any]:
    # Pending rows are not decided yet in this pass (a re-curation resets everything to
    # pending): matching them would chain onto stale cluster links.
    rows = (
        CurationDecision.objects.filter(id__in=keys)
        .exclude(shingles=None)
        .exclude(status=Status.PENDING)
        .values_list("id", "shingles")
    )
    return {pk: dedup.unpack_shingles(bytes(raw)) for pk, raw in rows if raw is not None}


# --- Deciding --------------------------------------------------------------------------------


def _final_status(decision: CurationDecision, cfg: CurationSettings) -> str:
    if decision.override_status:
        return decision.override_status
    reasons = decision.reasons
    if any(r["rule"] in ("exact_duplicate", "near_duplicate") for r in reasons):
        return Status.REJECTED
    if any(r["rule"].startswith("rule:") for r in reasons):
        return Status.REJECTED
    if decision.quality_score is not None:
        if decision.quality_score < cfg.classifier_reject_below:
            return Status.REJECTED
        if decision.quality_score < cfg.classifier_review_below:
            return Status.NEEDS_REVIEW
    return Status.KEPT


def _quality_key(decision: CurationDecision) -> tuple[float, int]:
    return (-(decision.quality_score if decision.quality_score is not None else -1.0), decision.pk)


def _duplicate_reason(kind: str, jaccard: float, threshold: float, representative_id: int) -> dict[str, Any]:
    return {
        "rule": kind,
        "value": round(jaccard, 4),
        "threshold": threshold if kind == "near_duplicate" else 1.0,
        "of": representative_id,
        "message": f"{'exact' if kind == 'exact_duplicate' else 'near'} duplicate of item {representative_id}"
        + (f" (Jaccard {jaccard:.3f} ≥ {threshold:g})" if kind == "near_duplicate" else ""),
    }


def _strip_duplicate_reasons(reasons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in reasons if r["rule"] not in ("exact_duplicate", "near_duplicate")]


def _representative_rank(decision: CurationDecision, cfg: CurationSettings) -> tuple[float, int]:
    # The lowest rank represents a cluster.
    return _quality_key(decision) if cfg.representative_policy == "quality" else (0.0, decision.pk)


def _join_clusters(
    decision: CurationDecision,
    links: list[tuple[CurationDecision, float]],
    *,
    kind: str,
    cfg: CurationSettings,
) -> None:
    """Put `decision` in the cluster of every representative in `links` (each with the
    Jaccard of `decision`'s best match in that cluster), merging them into one cluster and
    letting the policy pick who represents it.

    Merging is what makes the clusters independent of the order items are decided in: an
    item that is near two clusters joins them, just as dedup.cluster_pairs would. Joining
    only the best match left the other clusters apart, each with its own kept item, whenever
    the item that bridges them came after them, as it does when two workers race.
    """
    winner = min([decision, *(rep for rep, _ in links)], key=lambda d: _representative_rank(d, cfg))
    decision.reasons = _strip_duplicate_reasons(decision.reasons)
    if winner is decision:
        decision.cluster_representative = decision
        decision.duplicate_jaccard = None
    else:
        jaccard = next(j for rep, j in links if rep.pk == winner.pk)
        decision.cluster_representative = winner
        decision.duplicate_jaccard = jaccard
        decision.reasons = [
            *decision.reasons,
            _duplicate_reason(kind, jaccard, cfg.near_dup_threshold, winner.pk),
        ]
    # Every other cluster moves to the winner, its old representative too.
    link_of = {rep.pk: j for rep, j in links if rep.pk != winner.pk}
    if not link_of:
        return
    members = list(
        CurationDecision.objects.filter(
            Q(cluster_representative_id__in=list(link_of)) | Q(pk__in=list(link_of))
        ).exclude(pk=decision.pk)
    )
    for member in members:
        # The old representatives are linked through `decision`; their members keep their
        # Jaccard against the representative they had.
        link = link_of.get(member.pk) or link_of[member.cluster_representative_id or member.pk]
        member.cluster_representative_id = winner.pk
        if member.pk in link_of:
            member.duplicate_jaccard = link
        member.reasons = [
            *_strip_duplicate_reasons(member.reasons),
            _duplicate_reason(kind, member.duplicate_jaccard or link, cfg.near_dup_threshold, winner.pk),
        ]
        member.status = _final_status(member, cfg)
        member.pipeline_status = _final_status(_without_override(member), cfg)
    CurationDecision.objects.bulk_update(
        members, ["cluster_representative", "reasons", "duplicate_jaccard", "status", "pipeline_status"]
    )


def _matched_clusters(matches: list[dedup.Match], *, exclude: int) -> list[tuple[CurationDecision, float]]:
    """The representatives of the clusters `matches` fall in, each with its best match's
    Jaccard, best first. A stale link back to `exclude` (its own old cluster, from before a
    re-curation) is no cluster to join."""
    found = {
        d.pk: d
        for d in CurationDecision.objects.filter(pk__in=[int(str(m.key)) for m in matches]).select_related(
            "cluster_representative"
        )
    }
    links: dict[int, tuple[CurationDecision, float]] = {}
    for match in matches:
        member = found.get(int(str(match.key)))
        if member is None:
            continue
        rep = member.cluster_representative or member
        if rep.pk != exclude and rep.pk not in links:
            links[rep.pk] = (rep, match.jaccard)
    return list(links.values())


def _without_override(decision: CurationDecision) -> CurationDecision:
    copy = CurationDecision(
        pk=decision.pk, reasons=decision.reasons, quality_score=decision.quality_score, override_status=""
    )
    return copy


def _measurement(decision: CurationDecision, item: _Measured) -> Measurement:
    measures = item.measures
    return Measurement(
        decision=decision,
        project_id=decision.project_id,
        kind=decision.kind,
        **measures.compared(),
        prose_words=measures.prose_words,
        lines=measures.lines,
        paragraphs=measures.paragraphs,
        exact_key=exact_key(item.exact_hash),
        minhash_sketch=dedup.sketch(item.signature.hashvalues),
    )


@dataclass
class BatchResult:
    processed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)


def batch_process(*, project_id: int, decision_ids: list[int], token: str) -> BatchResult:
    """Measure, deduplicate and decide a claimed batch. Safe to run twice: rows whose claim
    was lost to another worker are left alone."""
    result = BatchResult()
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not decision_ids:
        return result
    cfg = curation_settings(project=project)
    decisions = list(
        CurationDecision.objects.filter(id__in=decision_ids, claim_token=token)
        .select_related("prompt", "response__prompt")
        .order_by("id")
    )
    if not decisions:
        return result
    # The expensive part runs outside the lock, in parallel across workers.
    measured = _measure(decisions, cfg)
    try:
        with transaction.atomic():
            # One worker at a time decides duplicates for a project: this row lock is what
            # stops two workers from both keeping members of one cluster.
            cfg = CurationSettings.objects.select_for_update().get(pk=cfg.pk)
            by_kind: dict[str, list[_Measured]] = {}
            for item in measured:
                by_kind.setdefault(item.decision.kind, []).append(item)
            for kind, items in by_kind.items():
                _decide_kind(project_id, kind, items, cfg, token, result)
    except Exception:
        INDEXES.forget(project_id=project_id)
        raise
    return result


def _decide_kind(
    project_id: int, kind: str, items: list[_Measured], cfg: CurationSettings, token: str, result: BatchResult
) -> None:
    threshold = cfg.near_dup_threshold
    index, watermark = INDEXES.get(cfg=cfg, kind=kind, threshold=threshold)
    watermark = _top_up(index, project_id=project_id, kind=kind, after_seq=watermark)
    still_mine = set(
        CurationDecision.objects.filter(id__in=[m.decision.pk for m in items], claim_token=token).values_list(
            "id", flat=True
        )
    )
    now = timezone.now()
    measurements = []
    for item in items:
        decision = item.decision
        if decision.pk not in still_mine:
            continue
        decision.reasons = [
            {"rule": f"rule:{r.name}", "value": r.value, "threshold": r.threshold, "message": r.message}
            for r in item.rules
            if not r.passed
        ]
        decision.rules = rules.results_to_json(item.rules)
        decision.pii = item.pii
        decision.exact_hash = item.exact_hash
        decision.signature = item.signature.to_bytes()
        decision.signature_scheme = SCHEME.id
        decision.shingles = dedup.pack_shingles(item.shingles)
        decision.quality_score = item.quality
        decision.cluster_representative = None
        decision.duplicate_jaccard = None
        exact = (
            CurationDecision.objects.filter(project_id=project_id, kind=kind, exact_hash=item.exact_hash)
            .exclude(pk=decision.pk)
            .exclude(status=Status.PENDING)
            .order_by("id")
            .first()
        )
        joined = False
        if exact is not None:
            representative = exact.cluster_representative or exact
            if representative.pk != decision.pk:
                # An exact twin has its twin's neighbours, already in the twin's cluster.
                _join_clusters(decision, [(representative, 1.0)], kind="exact_duplicate", cfg=cfg)
                joined = True
        if not joined:
            matches = index.find_matches(item.signature, item.shingles, _fetch_shingles, exclude=decision.pk)
            links = _matched_clusters(matches, exclude=decision.pk) if matches else []
            if links:
                _join_clusters(decision, links, kind="near_duplicate", cfg=cfg)
            else:
                decision.cluster_representative = decision
        decision.pipeline_version = PIPELINE_VERSION
        decision.pipeline_status = _final_status(_without_override(decision), cfg)
        decision.status = _final_status(decision, cfg)
        decision.processed_at = now
        decision.claim_token = ""
        decision.claimed_at = None
        cfg.dedup_seq += 1
        decision.dedup_seq = cfg.dedup_seq
        decision.save()
        measurements.append(_measurement(decision, item))
        if decision.pk not in index:
            index.insert(decision.pk, item.signature)
        watermark = cfg.dedup_seq
        result.processed += 1
        result.outcomes[str(decision.status)] += 1
        for reason in decision.reasons:
            result.reasons[reason["rule"]] += 1
    cfg.save(update_fields=["dedup_seq"])
    Measurement.objects.bulk_create(
        measurements,
        update_conflicts=True,
        unique_fields=["decision"],
        update_fields=[f.name for f in Measurement._meta.concrete_fields if not f.primary_key],
    )
    final = watermark
    transaction.on_commit(
        lambda: INDEXES.set_watermark(cfg=cfg, kind=kind, threshold=threshold, index=index, seq=final)
    )


def project_curate(
    *,
    project_id: int,
    trigger: str = "auto",
    token: str | None = None,
    batch_size: int = BATCH_SIZE,
    max_batches: int | None = None,
    progress: Any = None,
) -> CurationRun | None:
    """Curate everything pending in a project, batch by batch, and record a CurationRun.

    `token` names this run's claims; the Celery task passes its task id, so a redelivery
    after a crash picks up exactly the rows the dead worker had claimed.
    """
    if not Project.objects.filter(pk=project_id).exists():
        return None
    decisions_ensure(project_id=project_id)
    run = CurationRun.objects.create(project_id=project_id, trigger=trigger)
    started = time.monotonic()
    token = token or uuid.uuid4().hex
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    errors: list[dict[str, Any]] = []
    batches = 0
    while max_batches is None or batches < max_batches:
        ids = decisions_claim(project_id=project_id, token=token, limit=batch_size)
        if not ids:
            break
        batches += 1
        try:
            batch = batch_process(project_id=project_id, decision_ids=ids, token=token)
        except Exception as exc:
            logger.exception("curation batch failed for project %s", project_id)
            errors.append({"error": f"{type(exc).__name__}: {exc}", "items": ids[:20]})
            # Give the rows back at once instead of waiting for the claim to expire.
            CurationDecision.objects.filter(id__in=ids, claim_token=token).update(
                claim_token="", claimed_at=None
            )
            break
        outcomes.update(batch.outcomes)
        reasons.update(batch.reasons)
        run.items += batch.processed
        if progress is not None:
            progress(batch.processed)
    run.outcomes = dict(outcomes)
    run.reasons = dict(reasons)
    run.errors = errors
    run.finished_at = timezone.now()
    run.seconds = round(time.monotonic() - started, 3)
    run.save()
    return run


def project_recurate_mark(*, project: Project, actor: User | None) -> int:
    """Send every item of a project back through the pipeline. Curator overrides survive:
    they are stored apart from what the pipeline measures."""
    with transaction.atomic():
        decisions_ensure(project_id=project.pk)
        count = CurationDecision.objects.filter(project=project).update(
            status=Status.PENDING, claim_token="", claimed_at=None
        )
        audit_record(actor=actor, action="curation.recurate", target=project, after={"items": count})
    return count


# --- Curator overrides -----------------------------------------------------------------------

# A curator's reason, kept on the decision and in the audit log.
MAX_REASON_CHARS = 2_000


def decision_override(*, decision_id: int, actor: User, status: str, reason: str = "") -> CurationDecision:
    if status not in (Status.KEPT, Status.REJECTED, ""):
        raise InvalidInput("status must be kept, rejected, or empty to clear the override", field="status")
    reason = clean_optional_text(reason, field="reason", max_chars=MAX_REASON_CHARS)
    with transaction.atomic():
        decision = CurationDecision.objects.select_for_update().filter(pk=decision_id).first()
        if decision is None:
            raise NotFound(f"No curation decision with id {decision_id}")
        if decision.status == Status.PENDING and not decision.processed_at:
            raise Conflict("This item has not been curated yet")
        before = {"status": decision.status, "override_status": decision.override_status}
        decision.override_status = status
        decision.override_reason = reason
        decision.overridden_by = actor if status else None
        decision.overridden_at = timezone.now() if status else None
        decision.status = status or decision.pipeline_status or Status.PENDING
        decision.save(
            update_fields=["override_status", "override_reason", "overridden_by", "overridden_at", "status"]
        )
        audit_record(
            actor=actor,
            action="curation.override",
            target=decision,
            before=before,
            after={"status": decision.status, "override_status": status},
            reason=reason,
        )
    return decision


# --- Clusters --------------------------------------------------------------------------------


def _locked_cluster(decision_id: int) -> tuple[CurationSettings, CurationDecision, list[CurationDecision]]:
    """The decision, its cluster's members (the representative included) and the project's
    settings, all locked. The settings row is the per-project dedup lock batch_process takes,
    so no pipeline batch re-points this cluster while a curator changes it."""
    found = CurationDecision.objects.filter(pk=decision_id).values_list("project_id", flat=True).first()
    if found is None:
        raise NotFound(f"No curation decision with id {decision_id}")
    curation_settings(project=Project.objects.get(pk=found))
    cfg = CurationSettings.objects.select_for_update().get(project_id=found)
    decision = CurationDecision.objects.select_for_update().get(pk=decision_id)
    representative_id = decision.cluster_representative_id
    if representative_id is None:
        raise Conflict("This item is in no cluster: it has not been deduplicated yet")
    members = list(
        CurationDecision.objects.select_for_update()
        .filter(Q(cluster_representative_id=representative_id) | Q(pk=representative_id))
        .order_by("id")
    )
    if any(m.status == Status.PENDING for m in members):
        raise Conflict("This cluster is being curated again; try once the pipeline has caught up")
    return cfg, decision, members


def cluster_set_representative(*, decision_id: int, actor: User, reason: str = "") -> CurationDecision:
    """Make one member the representative of its duplicate cluster.

    Every member, the old representative too, is re-pointed to it and decided again: the new
    representative loses its duplicate reason (kept, unless a rule, the classifier or an
    override says otherwise), the others are duplicates of it, with their Jaccard against it.
    Each changed member gets an audit row. A later re-curation forms clusters afresh under
    the project's representative policy; an override is what pins a status for good.
    """
    reason = clean_optional_text(reason, field="reason", max_chars=MAX_REASON_CHARS)
    with transaction.atomic():
        cfg, decision, members = _locked_cluster(decision_id)
        old_representative = decision.cluster_representative_id
        if old_representative == decision.pk:
            raise Conflict("This item already represents its cluster")
        mine = dedup.unpack_shingles(bytes(decision.shingles)) if decision.shingles is not None else None
        before = {m.pk: {"representative": m.cluster_representative_id, "status": m.status} for m in members}
        for member in members:
            if member.pk == decision.pk:
                member.cluster_representative_id = member.pk
                member.duplicate_jaccard = None
                member.reasons = _strip_duplicate_reasons(member.reasons)
            else:
                exact = bool(member.exact_hash) and member.exact_hash == decision.exact_hash
                if exact:
                    jaccard = 1.0
                elif mine is not None and member.shingles is not None:
                    jaccard = dedup.jaccard(mine, dedup.unpack_shingles(bytes(member.shingles)))
                else:
                    jaccard = member.duplicate_jaccard or 0.0
                found = _duplicate_reason(
                    "exact_duplicate" if exact else "near_duplicate",
                    jaccard,
                    cfg.near_dup_threshold,
                    decision.pk,
                )
                if not exact and jaccard < cfg.near_dup_threshold:
                    # In the cluster through the old representative, not by its own similarity.
                    found["message"] = (
                        f"near duplicate of item {decision.pk} (Jaccard {jaccard:.3f}; in its cluster "
                        f"through item {old_representative}, representative chosen by a curator)"
                    )
                member.cluster_representative_id = decision.pk
                member.duplicate_jaccard = jaccard
                member.reasons = [*_strip_duplicate_reasons(member.reasons), found]
            member.pipeline_status = _final_status(_without_override(member), cfg)
            member.status = _final_status(member, cfg)
        CurationDecision.objects.bulk_update(
            members, ["cluster_representative", "duplicate_jaccard", "reasons", "status", "pipeline_status"]
        )
        for member in members:
            after = {"representative": member.cluster_representative_id, "status": member.status}
            if member.pk == decision.pk:
                decision = member
                audit_record(
                    actor=actor,
                    action="curation.cluster_representative",
                    target=member,
                    before=before[member.pk],
                    after={**after, "members": len(members)},
                    reason=reason,
                )
            else:
                audit_record(
                    actor=actor,
                    action="curation.cluster_repoint",
                    target=member,
                    before=before[member.pk],
                    after=after,
                    reason=reason,
                )
    return decision


def cluster_decide(*, decision_id: int, actor: User, status: str, reason: str = "") -> int:
    """Keep or reject every member of a duplicate cluster (an override on each, audited each),
    for a cluster that is wrong as a whole: a false positive to keep, or spam to drop."""
    if status not in (Status.KEPT, Status.REJECTED):
        raise InvalidInput("status must be kept or rejected", field="status")
    reason = clean_optional_text(reason, field="reason", max_chars=MAX_REASON_CHARS)
    with transaction.atomic():
        _cfg, decision, members = _locked_cluster(decision_id)
        for member in members:
            decision_override(decision_id=member.pk, actor=actor, status=status, reason=reason)
        representative = next(m for m in members if m.pk == decision.cluster_representative_id)
        audit_record(
            actor=actor,
            action="curation.cluster_decide",
            target=representative,
            after={"status": status, "members": [m.pk for m in members]},
            reason=reason,
        )
    return len(members)
