"""Threshold changes: the what-if preview, applying, restoring, and the preview's promise
that applying does exactly what it said."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from django.http import QueryDict

from console import selectors, services, whatif
from console.forms import ThresholdsInput, thresholds_input
from console.models import CurationSettingsRevision
from console.tests.factories import curated_project
from curation import rules
from curation import services as curation_services
from curation.models import CurationDecision, CurationSettings, Status
from curation.tests.factories import add_prompt
from flywheel.errors import Conflict, InvalidInput, NotFound
from flywheel.models import AuditLog

pytestmark = pytest.mark.django_db


def statuses(project) -> dict[int, str]:  # type: ignore[no-untyped-def]
    return dict(CurationDecision.objects.filter(project=project).values_list("id", "status"))


def apply_and_recurate(project, actor, proposed: ThresholdsInput) -> dict[int, str]:  # type: ignore[no-untyped-def]
    services.thresholds_apply(
        project=project,
        actor=actor,
        rule_overrides=proposed.rule_overrides,
        near_dup_threshold=proposed.near_dup_threshold,
        reason="test",
    )
    assert set(statuses(project).values()) == {Status.PENDING}
    # The re-curation the service queued, run here synchronously.
    curation_services.project_curate(project_id=project.pk, trigger="recurate")
    return statuses(project)


CASES = {
    "stricter prompts": ({"prompt": {"min_words": 4}}, 0.8),
    "looser duplicates": ({}, 0.5),
    "stricter duplicates": ({}, 0.95),
    "a gate and a limit": ({"prompt": {"stop_words_min_words": 5, "max_word_length": 12}}, 0.8),
    "responses off a rule": ({"response": {"min_words": 3, "max_symbol_ratio": None}}, 0.7),
}


@pytest.mark.parametrize("case", CASES)
def test_it_previews_exactly_what_applying_then_does(project, carol, case):
    curated_project(project)
    overrides, near_dup = CASES[case]
    proposed = ThresholdsInput(rule_overrides=overrides, near_dup_threshold=near_dup)
    before = statuses(project)

    preview = selectors.thresholds_preview(project=project, proposed=proposed)
    predicted = selectors.thresholds_preview_statuses(project=project, proposed=proposed)
    assert statuses(project) == before, "the preview wrote to the database"

    after = apply_and_recurate(project, carol, proposed)
    changed = {pk for pk in before if before[pk] != after[pk]}
    assert changed, "the case should change something, or it proves nothing"
    assert predicted == after
    assert preview.changed == len(changed)
    assert sorted(preview.transitions) == sorted(
        (a, b, n) for (a, b), n in Counter((before[pk], after[pk]) for pk in changed).items()
    )


def test_it_finds_the_changes_a_stricter_rule_makes_and_names_the_rule(project):
    world = curated_project(project)
    preview = selectors.thresholds_preview(
        project=project,
        proposed=ThresholdsInput(rule_overrides={"prompt": {"min_words": 4}}, near_dup_threshold=0.8),
    )
    word_count = next(r for r in preview.rules if r.name == "word_count")
    # "Explain recursion" (2 words) and "Explain recursion simply" (3) are newly rejected.
    assert (word_count.newly_failing, word_count.newly_passing, word_count.status_changes) == (2, 0, 2)
    assert [e.id for e in word_count.examples] == [
        world.decision(p).pk for p in (world.short, world.prompts[5])
    ]
    assert {(e.before, e.after) for e in word_count.examples} == {(Status.KEPT, Status.REJECTED)}
    assert preview.changed == 2


def test_it_previews_no_change_for_the_settings_in_force(project):
    curated_project(project)
    preview = selectors.thresholds_preview(
        project=project, proposed=ThresholdsInput(rule_overrides={}, near_dup_threshold=0.8)
    )
    assert (preview.changed, preview.transitions, preview.rules) == (0, [], [])
    assert preview.items == CurationDecision.objects.filter(project=project).count()
    assert not preview.settings_changed


def test_it_previews_a_gate_change_from_stored_counts_without_measuring_a_text(project, monkeypatch):
    curated_project(project)
    # Six prose words and no stop word: the stop-word rule skips it until it applies from 5 words.
    terse = add_prompt(project, "Summarise quarterly revenue figures, management summary")
    curation_services.project_curate(project_id=project.pk)
    assert CurationDecision.objects.get(prompt=terse).status == Status.KEPT
    for name in ("measure", "evaluate"):
        monkeypatch.setattr(rules, name, lambda *a, **k: pytest.fail("the preview measured a text"))
    preview = selectors.thresholds_preview(
        project=project,
        proposed=ThresholdsInput(
            rule_overrides={"prompt": {"stop_words_min_words": 5}}, near_dup_threshold=0.8
        ),
    )
    stop_words = next(r for r in preview.rules if r.name == "stop_words")
    assert (stop_words.newly_failing, stop_words.newly_passing) == (1, 0)
    assert [e.id for e in stop_words.examples] == [CurationDecision.objects.get(prompt=terse).pk]
    assert preview.changed == 1


def test_it_applies_thresholds_keeps_the_old_ones_and_audits(
    project, carol, django_capture_on_commit_callbacks
):
    curated_project(project)
    cfg = curation_services.curation_settings(project=project)
    cfg.rule_overrides = {"response": {"min_words": 2}}
    cfg.save()
    with django_capture_on_commit_callbacks() as callbacks:
        applied = services.thresholds_apply(
            project=project,
            actor=carol,
            rule_overrides={"prompt": {"min_words": 3}},
            near_dup_threshold=0.7,
            reason="prompts of two words are noise",
        )
    cfg.refresh_from_db()
    assert cfg.rule_overrides == {"prompt": {"min_words": 3}} and cfg.near_dup_threshold == 0.7
    revision = CurationSettingsRevision.objects.get()
    assert revision == applied.revision
    assert (revision.rule_overrides, revision.near_dup_threshold) == ({"response": {"min_words": 2}}, 0.8)
    assert applied.marked == CurationDecision.objects.filter(project=project).count()
    entry = AuditLog.objects.get(action="curation.thresholds")
    assert entry.actor == carol and entry.reason == "prompts of two words are noise"
    assert entry.before == {"rule_overrides": {"response": {"min_words": 2}}, "near_dup_threshold": 0.8}
    assert (
        entry.after["rule_overrides"] == {"prompt": {"min_words": 3}}
        and entry.after["revision"] == revision.pk
    )
    assert AuditLog.objects.filter(action="curation.recurate", actor=carol).count() == 1
    # One callback: the re-curation job, queued only once the settings are committed.
    assert len(callbacks) == 1


def test_it_restores_the_previous_settings(project, carol):
    curated_project(project)
    services.thresholds_apply(
        project=project,
        actor=carol,
        rule_overrides={"prompt": {"min_words": 3}},
        near_dup_threshold=0.7,
        reason="a",
    )
    services.thresholds_restore(project=project, actor=carol, reason="too strict")
    cfg = CurationSettings.objects.get(project=project)
    assert (cfg.rule_overrides, cfg.near_dup_threshold) == ({}, 0.8)
    latest = AuditLog.objects.filter(action="curation.thresholds").first()
    assert latest is not None and latest.reason == "too strict"
    assert latest.after["rule_overrides"] == {} and latest.before["near_dup_threshold"] == 0.7
    # Restoring is a change like any other: the settings it replaced can come back.
    assert CurationSettingsRevision.objects.count() == 2


def test_it_refuses_a_restore_with_nothing_to_restore(project, carol):
    with pytest.raises(NotFound):
        services.thresholds_restore(project=project, actor=carol, reason="")


def test_it_refuses_settings_that_change_nothing_or_make_no_sense(project, carol):
    with pytest.raises(Conflict):
        services.thresholds_apply(
            project=project, actor=carol, rule_overrides={}, near_dup_threshold=0.8, reason=""
        )
    with pytest.raises(InvalidInput):
        services.thresholds_apply(
            project=project,
            actor=carol,
            rule_overrides={"prompt": {"bogus": 1}},
            near_dup_threshold=0.8,
            reason="",
        )
    with pytest.raises(InvalidInput):
        services.thresholds_apply(
            project=project, actor=carol, rule_overrides={}, near_dup_threshold=1.5, reason=""
        )
    assert not CurationSettingsRevision.objects.exists()


def test_it_parses_the_form_into_overrides_that_differ_from_the_defaults():
    data = QueryDict(mutable=True)
    data.update(
        {
            "near_dup_threshold": "0.75",
            "prompt.min_words": "2",  # the default: no override
            "prompt.max_words": "",  # empty on a nullable field: the rule is off
            "response.min_words": "3",
            "response.max_symbol_ratio": "0.25",
        }
    )
    parsed = thresholds_input(data)
    assert parsed.errors == {}
    assert parsed.rule_overrides == {
        "prompt": {"max_words": None},
        "response": {"min_words": 3, "max_symbol_ratio": 0.25},
    }
    assert parsed.near_dup_threshold == 0.75
    bad = QueryDict(mutable=True)
    bad.update({"near_dup_threshold": "2", "prompt.min_words": "2.5", "prompt.min_mean_word_length": ""})
    assert set(thresholds_input(bad).errors) == {
        "near_dup_threshold",
        "prompt.min_words",
        "prompt.min_mean_word_length",
    }


@pytest.mark.parametrize("seed", range(12))
def test_it_judges_stored_measurements_in_sql_exactly_as_evaluate_would(project, seed):
    from console.tests.test_whatif import TEXTS, _random_limits
    from curation.models import Measurement
    from curation.tests.factories import add_demo

    prompts = [add_prompt(project, text) for text in TEXTS]
    for prompt, text in zip(prompts, reversed(TEXTS), strict=True):
        add_demo(prompt, text)
    curation_services.project_curate(project_id=project.pk)
    texts = {
        d.pk: (d.kind, d.item.text) for d in CurationDecision.objects.select_related("prompt", "response")
    }
    rng = random.Random(seed)
    limits = {kind: _random_limits(rng, kind) for kind in ("prompt", "response")}
    for name in whatif.RULES:
        condition = selectors._fails(name, limits)
        in_sql = (
            set(Measurement.objects.filter(condition).values_list("decision_id", flat=True))
            if condition
            else set()
        )
        expected = {
            pk
            for pk, (kind, text) in texts.items()
            if name in rules.failed_rules(rules.evaluate(text, limits[kind], kind=kind))  # type: ignore[arg-type]
        }
        assert in_sql == expected, name


def test_it_reads_the_sketches_the_same_through_copy_as_row_by_row(project, monkeypatch):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("binary COPY is PostgreSQL's")
    curated_project(project)
    copied = selectors._sketches(project.pk, "prompt")
    monkeypatch.setattr(selectors, "_copied", lambda rows: None)
    fetched = selectors._sketches(project.pk, "prompt")
    assert len(copied[0]) == CurationDecision.objects.filter(project=project, kind="prompt").count()
    for a, b in zip(copied, fetched, strict=True):
        assert a.dtype == b.dtype and (a == b).all()


def test_it_warms_the_duplicate_replay_when_the_thresholds_page_opens(project, carol, monkeypatch):
    from django.core.cache import cache
    from django.test import Client
    from django.urls import reverse

    from console import tasks

    curated_project(project)
    queued: list[int] = []
    monkeypatch.setattr(tasks.preview_warm, "delay", queued.append)
    cache.delete(f"console:preview-warm-queued:{project.pk}")
    c = Client()
    c.force_login(carol)
    for _ in range(2):
        assert c.get(reverse("console-thresholds", args=[project.pk])).status_code == 200
    assert queued == [project.pk], "one task for two page loads"

    tasks.preview_warm(project.pk)  # what the worker runs
    monkeypatch.setattr(whatif, "replay_duplicates", lambda *a, **k: pytest.fail("replayed again"))
    preview = selectors.thresholds_preview(
        project=project,
        proposed=ThresholdsInput(rule_overrides={"prompt": {"min_words": 4}}, near_dup_threshold=0.8),
    )
    assert preview.changed == 2
    # A new decision moves the dedup state on: the next preview replays again.
    add_prompt(project, "A brand new prompt about rivers and stones and the sea.")
    curation_services.project_curate(project_id=project.pk)
    with pytest.raises(pytest.fail.Exception, match="replayed again"):
        selectors.thresholds_preview(
            project=project, proposed=ThresholdsInput(rule_overrides={}, near_dup_threshold=0.8)
        )
