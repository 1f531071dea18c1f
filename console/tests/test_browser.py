"""The console in a real Chromium at 1280x800, driven as a curator would drive it, with the
database and the audit log checked after each action. Screenshots of every page land in
test-artifacts/screenshots/console-*.png for a human to look at."""

from __future__ import annotations

import pytest
from django.db.models import F
from playwright.sync_api import Page, expect

from console.tests.factories import curated_project, failed_pipeline_run, promoted_reward_models
from curation import services as curation_services
from curation.models import CurationDecision, Snapshot, Status
from feedback.metrics import POSITION_MIN_SIDED
from feedback.models import Judgment, Project
from feedback.tests.factories import PASSWORD, make_task
from flywheel.models import AuditLog, User
from flywheel.tests.browser import VIEWPORT, log_in, screenshot
from training.models import ModelKind, ModelVersion
from training.services import active_deployment
from workers.models import PipelineRun
from workers.pipeline import pipeline_settings_update

pytestmark = pytest.mark.browser


def _no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= VIEWPORT["width"], f"the page is {width}px wide at {VIEWPORT['width']}px"


def _current(page: Page) -> int:
    return int(page.locator("[data-queue]").get_attribute("data-current") or 0)


def _wait_for_current(page: Page, previous: int) -> int:
    page.wait_for_function(
        "(prev) => { const q = document.querySelector('[data-queue]');"
        " return q && q.dataset.current !== String(prev); }",
        arg=previous,
    )
    return _current(page)


def _needs_review(project: Project, count: int) -> list[int]:
    """Mark some kept items as the classifier's doubtful ones: what the queue is for."""
    ids = list(
        CurationDecision.objects.filter(project=project, status=Status.KEPT)
        .order_by("id")
        .values_list("id", flat=True)
    )[:count]
    CurationDecision.objects.filter(id__in=ids).update(
        status=Status.NEEDS_REVIEW, pipeline_status=Status.NEEDS_REVIEW, quality_score=0.35
    )
    return ids


def test_it_works_the_review_queue_by_keyboard(browser_page: Page, project: Project, carol: User) -> None:
    page = browser_page
    curated_project(project)
    first, second, third, fourth = _needs_review(project, 4)
    log_in(page, username="carol", password=PASSWORD)
    page.goto(f"/console/p/{project.pk}/review")
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    assert _current(page) == first
    _no_sideways_scroll(page)
    screenshot(page, "console-review")
    # A swap keeps this; a page load would wipe it.
    page.evaluate("window.__marker = 1")

    # K keeps the item on screen, and the next one loads in its place.
    page.keyboard.press("k")
    assert _wait_for_current(page, first) == second
    expect(page.get_by_test_id("queue-notice")).to_have_text(f"Kept item {first}.")
    # Typing a reason full of shortcut letters decides nothing; Esc leaves the field, R rejects.
    page.get_by_label("Reason (optional, kept in the audit log)").focus()
    page.keyboard.type("rk junk, keep out")
    page.keyboard.press("Escape")
    assert _current(page) == second
    page.keyboard.press("r")
    assert _wait_for_current(page, second) == third
    # J moves on without deciding, P comes back.
    page.keyboard.press("j")
    assert _wait_for_current(page, third) == fourth
    page.keyboard.press("p")
    assert _wait_for_current(page, fourth) == third
    # X selects the item on screen; J, X selects the next; Shift+R rejects both at once.
    page.keyboard.press("x")
    page.keyboard.press("j")
    assert _wait_for_current(page, third) == fourth
    page.keyboard.press("x")
    expect(page.locator("input[name=ids]:checked")).to_have_count(2)
    page.keyboard.press("Shift+R")
    expect(page.get_by_test_id("queue-notice")).to_have_text("Rejected 2 items.")
    expect(page.get_by_test_id("queue-empty")).to_be_visible()
    screenshot(page, "console-review-done")
    assert page.evaluate("window.__marker") == 1

    decisions = {d.pk: d for d in CurationDecision.objects.filter(id__in=[first, second, third, fourth])}
    assert [(decisions[i].status, decisions[i].override_status) for i in (first, second, third, fourth)] == [
        (Status.KEPT, Status.KEPT),
        (Status.REJECTED, Status.REJECTED),
        (Status.REJECTED, Status.REJECTED),
        (Status.REJECTED, Status.REJECTED),
    ]
    audit = {e.target_id: e for e in AuditLog.objects.filter(action="curation.override", actor=carol)}
    assert set(audit) == {str(i) for i in (first, second, third, fourth)}
    assert (
        audit[str(first)].before["status"] == Status.NEEDS_REVIEW
        and audit[str(first)].reason == "review queue"
    )
    assert audit[str(second)].reason == "rk junk, keep out"
    assert audit[str(third)].reason == "review queue, bulk"


def test_it_resolves_a_duplicate_cluster(browser_page: Page, project: Project, carol: User) -> None:
    page = browser_page
    world = curated_project(project)
    rep, near = world.decision(world.base), world.decision(world.near)
    members = CurationDecision.objects.filter(cluster_representative_id=rep.pk).count()
    log_in(page, username="carol", password=PASSWORD)
    page.goto(f"/console/p/{project.pk}/clusters")
    screenshot(page, "console-clusters")
    page.get_by_test_id("clusters").get_by_role("link", name=str(rep.pk), exact=True).click()
    expect(page.get_by_role("heading", name=f"Cluster of item {rep.pk}")).to_be_visible()
    card = page.locator(f"[data-member='{near.pk}']")
    # The word the variant changed is marked on both sides.
    expect(card.locator("ins")).not_to_have_count(0)
    expect(card.locator("del")).not_to_have_count(0)
    _no_sideways_scroll(page)
    screenshot(page, "console-cluster")

    card.get_by_label("Reason").fill("the edited wording reads better")
    card.get_by_role("button", name=f"Make item {near.pk} the representative").click()
    expect(page.get_by_role("status")).to_contain_text(f"Item {near.pk} now represents its cluster.")
    expect(page.get_by_role("heading", name=f"Cluster of item {near.pk}")).to_be_visible()
    rep.refresh_from_db()
    near.refresh_from_db()
    assert near.cluster_representative_id == near.pk and near.status == Status.KEPT
    assert rep.cluster_representative_id == near.pk and rep.status == Status.REJECTED
    entry = AuditLog.objects.get(action="curation.cluster_representative")
    assert (entry.actor, entry.target_id, entry.reason) == (
        carol,
        str(near.pk),
        "the edited wording reads better",
    )

    page.get_by_label("Reason", exact=True).first.fill("near-identical spam")
    page.get_by_role("button", name=f"Reject all {members}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Rejected all {members} items of the cluster.")
    in_cluster = CurationDecision.objects.filter(cluster_representative_id=near.pk)
    assert set(in_cluster.values_list("status", "override_status")) == {(Status.REJECTED, Status.REJECTED)}
    assert (
        AuditLog.objects.filter(action="curation.override", reason="near-identical spam").count() == members
    )
    assert AuditLog.objects.filter(action="curation.cluster_decide", actor=carol).count() == 1


def test_it_previews_a_threshold_change_and_applying_it_does_exactly_that(
    browser_page: Page, project: Project, carol: User
) -> None:
    page = browser_page
    curated_project(project)
    before = dict(CurationDecision.objects.filter(project=project).values_list("id", "status"))
    log_in(page, username="carol", password=PASSWORD)
    page.goto(f"/console/p/{project.pk}/thresholds")
    screenshot(page, "console-thresholds")
    page.locator("#t-prompt-min_words").fill("4")
    page.get_by_label("Near-duplicate threshold (Jaccard of 5-word shingles)").fill("0.5")
    page.get_by_role("button", name="Preview changes").click()
    expect(page.get_by_test_id("preview")).to_be_visible()
    previewed = int(page.get_by_test_id("preview-changed").inner_text())
    rejecting = int(page.get_by_test_id("preview-rejected").inner_text())
    keeping = int(page.get_by_test_id("preview-kept").inner_text())
    assert previewed > 0
    # Nothing was written by the preview.
    assert dict(CurationDecision.objects.filter(project=project).values_list("id", "status")) == before
    _no_sideways_scroll(page)
    screenshot(page, "console-thresholds-preview", full_page=True)

    page.get_by_label("Reason (required, kept in the audit log)").fill("two-word prompts are noise")
    page.get_by_role("button", name="Apply and re-curate").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    expect(page.get_by_test_id("progress")).to_have_attribute("data-pending", str(len(before)))
    screenshot(page, "console-thresholds-running")
    # The job the apply queued, run here: the progress bar follows it by polling.
    curation_services.project_curate(project_id=project.pk, trigger="recurate")
    expect(page.get_by_test_id("progress-text")).to_contain_text("up to date", timeout=15_000)

    after = dict(CurationDecision.objects.filter(project=project).values_list("id", "status"))
    moved = [after[pk] for pk in before if before[pk] != after[pk]]
    assert (len(moved), moved.count(Status.REJECTED), moved.count(Status.KEPT)) == (
        previewed,
        rejecting,
        keeping,
    )
    entry = AuditLog.objects.get(action="curation.thresholds")
    assert entry.actor == carol and entry.reason == "two-word prompts are noise"
    assert (
        entry.after["rule_overrides"] == {"prompt": {"min_words": 4}}
        and entry.after["near_dup_threshold"] == 0.5
    )
    expect(page.get_by_test_id("revisions")).to_contain_text("two-word prompts are noise")


def test_it_creates_verifies_and_downloads_a_snapshot(
    browser_page: Page, project: Project, carol: User
) -> None:
    page = browser_page
    curated_project(project)
    log_in(page, username="carol", password=PASSWORD)
    page.goto(f"/console/p/{project.pk}/snapshots")
    page.get_by_label("Note").fill("first cut")
    page.get_by_role("button", name="Create snapshot").click()
    expect(page.get_by_role("status")).to_contain_text("Created snapshot v1.")
    snapshot = Snapshot.objects.get(project=project)
    assert (snapshot.version, snapshot.note, snapshot.created_by) == (1, "first cut", carol)
    assert AuditLog.objects.get(action="snapshot.create").actor == carol
    row = page.locator("tr[data-version='1']")
    with page.expect_download() as download:
        row.get_by_role("link", name="sft_train.jsonl").click()
    with (
        open(download.value.path(), "rb") as handle,
        open(f"{snapshot.directory}/sft_train.jsonl", "rb") as stored,
    ):
        assert handle.read() == stored.read()
    row.get_by_role("button", name="Verify v1").click()
    expect(page.get_by_role("status")).to_contain_text("Snapshot v1 is intact")
    _no_sideways_scroll(page)
    screenshot(page, "console-snapshots")


def test_it_rolls_a_model_back_after_a_confirmation(
    browser_page: Page, project: Project, carol: User, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    v1, v2 = promoted_reward_models(project, tmp_path)
    log_in(page, username="carol", password=PASSWORD)
    page.goto(f"/console/p/{project.pk}/models")
    expect(page.get_by_role("link", name="Force-promote")).to_have_count(0)  # admins only
    _no_sideways_scroll(page)
    screenshot(page, "console-models")
    page.get_by_role("link", name="Roll back to v1").click()
    expect(page.get_by_role("heading", name="Roll back to Reward model v1?")).to_be_visible()
    screenshot(page, "console-confirm")
    # No reason, no rollback: the browser holds the form back (the server refuses it too).
    page.get_by_role("button", name="Roll back to v1").click()
    expect(page.locator("textarea:invalid")).to_have_count(1)
    expect(page.get_by_role("heading", name="Roll back to Reward model v1?")).to_be_visible()
    assert active_deployment(project=project, kind=ModelKind.REWARD).version_id == v2.pk
    page.get_by_label("Reason (recorded in the audit log)").fill("v2 regressed on short answers")
    page.get_by_role("button", name="Roll back to v1").click()
    expect(page.get_by_role("status")).to_contain_text("Rolled back to Reward model v1.")
    deployment = active_deployment(project=project, kind=ModelKind.REWARD)
    assert deployment is not None and deployment.version_id == v1.pk and deployment.action == "rollback"
    assert ModelVersion.objects.get(pk=v2.pk).status == "retired"
    entry = AuditLog.objects.get(action="model.rollback")
    assert (entry.actor, entry.reason, entry.before, entry.after) == (
        carol,
        "v2 regressed on short answers",
        {"deployed": v2.pk},
        {"deployed": v1.pk},
    )


def test_it_lays_out_the_other_pages_at_1280_px(
    browser_page: Page, project: Project, carol: User, alice: User, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    world = curated_project(project)
    promoted_reward_models(project, tmp_path)
    pii = world.decision(world.prompts[6])
    failed_pipeline_run(project)
    # A long base path in the pipeline settings must wrap, not widen the page.
    deep = (
        tmp_path
        / "hub"
        / "models--acme--all-MiniLM-L6-v2-finetuned-on-our-support-tickets"
        / "snapshots"
        / "3f2a9c0d7e41b6a85c9d02e7f1b3a4c5d6e7f809"
    )
    deep.mkdir(parents=True)
    pipeline_settings_update(
        project=project, actor=None, changes={"reward_base": str(deep), "reward_warm_start": True}
    )
    for _ in range(POSITION_MIN_SIDED):
        Judgment.objects.create(
            task=make_task(project), annotator=alice, choice="a", left_side="a", time_spent_ms=900
        )
    log_in(page, username="carol", password=PASSWORD)
    for name, url in (
        ("console-overview", f"/console/p/{project.pk}/"),
        ("console-item", f"/console/p/{project.pk}/items/{pii.pk}"),
        ("console-annotators", f"/console/p/{project.pk}/annotators"),
        ("console-audit", "/console/audit"),
        ("console-pipeline", f"/console/p/{project.pk}/pipeline"),
    ):
        page.goto(url)
        _no_sideways_scroll(page)
        screenshot(page, name)
    page.goto(f"/console/p/{project.pk}/items/{pii.pk}")
    expect(page.get_by_test_id("item-text").locator("mark.pii")).to_have_text("jane.doe@example.com")
    # Retry the failed pipeline run.
    page.goto(f"/console/p/{project.pk}/pipeline")
    expect(page.get_by_test_id("loop-settings")).to_contain_text("continues from the deployed one")
    expect(page.get_by_test_id("loop-settings")).to_contain_text("3f2a9c0d7e41b6a85c9d02e7f1b3a4c5d6e7f809")
    failed = PipelineRun.objects.get(project=project)
    page.get_by_role("button", name=f"Retry #{failed.pk}").click()
    expect(page.get_by_role("status")).to_contain_text(f"a retry of run {failed.pk}")
    retry = PipelineRun.objects.get(project=project, retry_of=failed)
    assert AuditLog.objects.get(action="pipeline.start").actor == carol
    expect(page.get_by_test_id("active-run")).to_contain_text(f"Run {retry.pk} is queued")
    # Exclude alice's judgments from the annotators page, with a reason.
    page.goto(f"/console/p/{project.pk}/annotators")
    row = page.locator("tr[data-user='alice']")
    expect(row).to_contain_text("picks the left side 100%")
    row.get_by_label("Reason to exclude alice's judgments").fill("careless votes")
    row.get_by_role("button", name="Exclude judgments").click()
    expect(page.get_by_role("status")).to_contain_text(
        "alice's judgments are excluded from future snapshots."
    )
    alice.refresh_from_db()
    assert alice.judgments_excluded
    assert AuditLog.objects.get(action="user.exclude_judgments").reason == "careless votes"
    assert (
        CurationDecision.objects.filter(project=project).exclude(cluster_representative_id=F("id")).exists()
    )
