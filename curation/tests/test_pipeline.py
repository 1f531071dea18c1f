from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from curation import rules, services
from curation.dedup import Signature, jaccard, shingle_fingerprints, sketch
from curation.models import CurationDecision, CurationRun, Measurement, Status
from curation.tests.factories import add_prompt, paragraph, variant
from curation.text import exact_key
from flywheel.models import AuditLog

pytestmark = pytest.mark.django_db


def decision_of(prompt) -> CurationDecision:  # type: ignore[no-untyped-def]
    return CurationDecision.objects.get(prompt=prompt)


def test_it_rejects_exact_duplicates_after_normalisation(project):
    first = add_prompt(project, "How do I keep basil alive on a windowsill in winter?")
    second = add_prompt(project, "  how do I keep BASIL alive on a windowsill in winter!! ")
    services.project_curate(project_id=project.pk)
    kept, dup = decision_of(first), decision_of(second)
    assert kept.status == Status.KEPT
    assert dup.status == Status.REJECTED
    assert dup.cluster_representative_id == kept.pk
    assert dup.reasons[0]["rule"] == "exact_duplicate"
    # The original text is untouched.
    second.refresh_from_db()
    assert second.text == "  how do I keep BASIL alive on a windowsill in winter!! "


def test_it_groups_near_duplicates_and_keeps_one(project):
    base = paragraph(1)
    near = variant(base, 2)
    assert jaccard(shingle_fingerprints(base), shingle_fingerprints(near)) >= 0.8
    distinct = paragraph(99)
    prompts = [add_prompt(project, t) for t in (base, near, distinct)]
    services.project_curate(project_id=project.pk)
    first, second, third = (decision_of(p) for p in prompts)
    assert first.status == Status.KEPT and third.status == Status.KEPT
    assert second.status == Status.REJECTED
    assert second.cluster_representative_id == first.pk
    reason = second.reasons[0]
    assert reason["rule"] == "near_duplicate" and reason["value"] >= 0.8 and reason["threshold"] == 0.8


def test_it_does_not_call_texts_below_the_threshold_duplicates(project):
    base = paragraph(5)
    far = variant(base, 6, edits=8)
    assert jaccard(shingle_fingerprints(base), shingle_fingerprints(far)) < 0.8
    prompts = [add_prompt(project, t) for t in (base, far)]
    services.project_curate(project_id=project.pk)
    assert [decision_of(p).status for p in prompts] == [Status.KEPT, Status.KEPT]


def test_it_merges_the_clusters_an_item_bridges_whatever_the_order(project):
    base = paragraph(31)
    copies = [variant(base, 32 + i) for i in range(6)]
    # Each copy is near the base, but the copies are not near each other: only the base
    # puts them in one cluster.
    assert jaccard(shingle_fingerprints(copies[0]), shingle_fingerprints(copies[1])) < 0.8
    prompts = [add_prompt(project, t) for t in (base, *copies)]
    services.decisions_ensure(project_id=project.pk)
    ids = services.decisions_claim(project_id=project.pk, token="t")
    # The copies are decided before the base, as when another worker takes the lock first.
    services.batch_process(project_id=project.pk, decision_ids=ids[1:], token="t")
    services.batch_process(project_id=project.pk, decision_ids=ids[:1], token="t")
    first, *rest = (decision_of(p) for p in prompts)
    assert first.status == Status.KEPT and first.cluster_representative_id == first.pk
    for decision in rest:
        assert decision.status == Status.REJECTED
        assert decision.cluster_representative_id == first.pk
        assert decision.reasons[-1]["of"] == first.pk


def test_it_lets_the_best_quality_item_represent_a_cluster(project, monkeypatch):
    cfg = services.curation_settings(project=project)
    cfg.representative_policy = "quality"
    cfg.save()
    base = paragraph(7)
    first = add_prompt(project, base)
    services.project_curate(project_id=project.pk)
    better = add_prompt(project, variant(base, 8))

    def score(measured, cfg):  # type: ignore[no-untyped-def]
        for item in measured:
            item.quality = 0.9

    monkeypatch.setattr(services, "_score_quality", score)
    services.project_curate(project_id=project.pk)
    old, new = decision_of(first), decision_of(better)
    assert new.status == Status.KEPT and new.cluster_representative_id == new.pk
    assert old.status == Status.REJECTED and old.cluster_representative_id == new.pk


def test_it_measures_every_rule_on_every_item(project):
    prompt = add_prompt(project, "asdf asdf asdf asdf asdf")
    services.project_curate(project_id=project.pk)
    decision = decision_of(prompt)
    names = {r["name"] for r in decision.rules}
    assert {"word_count", "mean_word_length", "dup_line_fraction", "top_2gram_coverage"} <= names
    assert all("value" in r and "threshold" in r for r in decision.rules)
    assert decision.status == Status.REJECTED
    assert any(r["rule"].startswith("rule:") for r in decision.reasons)


def test_it_stores_the_measurements_as_numbers_and_replaces_them_on_a_rerun(project):
    text = "Wait...\nWhat...\nReally...\nOk, explain the river and the stone to me please"
    prompt = add_prompt(project, text)
    services.project_curate(project_id=project.pk)
    decision = decision_of(prompt)
    stored = Measurement.objects.get(decision=decision)
    measures = rules.measure(text)
    assert {name: getattr(stored, name) for name in measures.compared()} == measures.compared()
    assert (stored.prose_words, stored.lines, stored.paragraphs) == (
        measures.prose_words,
        measures.lines,
        measures.paragraphs,
    )
    assert (stored.project_id, stored.kind) == (project.pk, "prompt")
    assert stored.exact_key == exact_key(decision.exact_hash)
    signature = Signature.from_bytes(bytes(decision.signature))
    assert bytes(stored.minhash_sketch) == sketch(signature.hashvalues)
    # The stored rules, messages and all, come from the same numbers.
    limits = rules.thresholds_for("prompt")
    assert decision.rules == rules.results_to_json(rules.judge(measures, limits))

    services.project_recurate_mark(project=project, actor=None)
    Measurement.objects.filter(decision=decision).update(word_count=-1)
    services.project_curate(project_id=project.pk)
    assert Measurement.objects.get(decision=decision).word_count == measures.word_count
    assert Measurement.objects.count() == 1


def test_it_flags_pii_without_rejecting(project):
    prompt = add_prompt(
        project, "Email me at jane.doe@example.com or call +1 415 555 0100 about the invoice."
    )
    services.project_curate(project_id=project.pk)
    decision = decision_of(prompt)
    assert {p["kind"] for p in decision.pii} >= {"email", "phone"}


def test_it_keeps_a_curator_override_across_reruns(project, carol):
    first = add_prompt(project, "What is the capital of Australia and why is it not Sydney?")
    second = add_prompt(project, "What is the capital of Australia, and why is it not Sydney?")
    services.project_curate(project_id=project.pk)
    dup = decision_of(second)
    assert dup.status == Status.REJECTED
    services.decision_override(
        decision_id=dup.pk, actor=carol, status=Status.KEPT, reason="asked twice on purpose"
    )
    services.project_recurate_mark(project=project, actor=carol)
    services.project_curate(project_id=project.pk, trigger="recurate")
    dup.refresh_from_db()
    assert dup.status == Status.KEPT
    assert dup.pipeline_status == Status.REJECTED
    assert decision_of(first).status == Status.KEPT
    audit = AuditLog.objects.filter(action="curation.override").get()
    assert audit.before["status"] == "rejected" and audit.after["status"] == "kept" and audit.actor == carol


def test_it_records_a_curation_run_with_counts(project):
    add_prompt(project, "Explain how a bicycle gear system helps on steep hills.")
    add_prompt(project, "Explain how a bicycle gear system helps on steep hills.")
    add_prompt(project, "!!!!!!!! ######## !!!!!!!")
    run = services.project_curate(project_id=project.pk)
    assert run is not None
    run = CurationRun.objects.get(pk=run.pk)
    assert run.items == 3
    assert run.outcomes == {"kept": 1, "rejected": 2}
    assert run.reasons["exact_duplicate"] == 1
    assert run.finished_at is not None and run.seconds is not None and run.errors == []


def test_it_ignores_a_batch_whose_claim_was_taken_over(project):
    prompt = add_prompt(project, "How do tides work, and why are there two a day?")
    services.decisions_ensure(project_id=project.pk)
    dead = services.decisions_claim(project_id=project.pk, token="dead-worker")
    assert dead
    # The dead worker's claim is still fresh: nobody else may take it.
    assert services.decisions_claim(project_id=project.pk, token="other") == []
    later = timezone.now() + services.CLAIM_TTL + timedelta(seconds=1)
    taken = services.decisions_claim(project_id=project.pk, token="other", now=later)
    assert taken == dead
    assert services.batch_process(project_id=project.pk, decision_ids=taken, token="other").processed == 1
    # The dead worker comes back to life: its redelivered batch must not process again.
    assert (
        services.batch_process(project_id=project.pk, decision_ids=dead, token="dead-worker").processed == 0
    )
    decision = decision_of(prompt)
    assert decision.status == Status.KEPT and decision.dedup_seq == 1


def test_it_rebuilds_the_index_from_stored_signatures(project):
    base = paragraph(11)
    add_prompt(project, base)
    services.project_curate(project_id=project.pk)
    # A new worker process: no in-memory index, and (with Redis) a lost watermark.
    services.INDEXES._memory.clear()
    cfg = services.curation_settings(project=project)
    index, _ = services.INDEXES.get(cfg=cfg, kind="prompt", threshold=cfg.near_dup_threshold)
    index.drop()
    services.INDEXES.set_watermark(
        cfg=cfg, kind="prompt", threshold=cfg.near_dup_threshold, index=index, seq=0
    )
    late = add_prompt(project, variant(base, 12))
    services.project_curate(project_id=project.pk)
    assert decision_of(late).status == Status.REJECTED


def test_it_stores_signatures_with_their_scheme(project):
    prompt = add_prompt(project, paragraph(21))
    services.project_curate(project_id=project.pk)
    decision = decision_of(prompt)
    assert "datasketch" in decision.signature_scheme and "affine32" in decision.signature_scheme
    from curation.dedup import Signature

    assert (
        Signature.from_bytes(bytes(decision.signature), expected=services.SCHEME).scheme.id
        == decision.signature_scheme
    )
