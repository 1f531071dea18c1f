"""The console's pages through Django's test client: who sees them, what they show, and that
user and model text is always escaped."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from console.forms import ThresholdsInput
from console.models import CurationSettingsRevision
from console.tests.factories import curated_project, promoted_reward_models
from curation import services as curation_services
from curation.models import CurationDecision, Snapshot, Status
from curation.snapshots import snapshot_create
from curation.tests.factories import add_prompt
from feedback.models import Project
from feedback.tests.factories import make_user
from flywheel.models import AuditLog, Role, User
from training.models import ModelKind, ModelVersion
from training.services import active_deployment

pytestmark = pytest.mark.django_db

EVIL = "<script>alert('owned')</script> Please explain how the river carries stones to the sea."


def client(user: User) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def world(project, carol, tmp_path):  # type: ignore[no-untyped-def]
    curated = curated_project(project)
    evil = add_prompt(project, EVIL)
    curation_services.project_curate(project_id=project.pk)
    snapshot = snapshot_create(project=project, actor=carol)
    promoted_reward_models(project, tmp_path)
    return {"curated": curated, "evil": CurationDecision.objects.get(prompt=evil), "snapshot": snapshot}


def pages(project: Project, world) -> list[str]:  # type: ignore[no-untyped-def]
    p = project.pk
    evil = world["evil"].pk
    near = world["curated"].decision(world["curated"].near).pk
    return [
        reverse("console-overview", args=[p]),
        reverse("console-review", args=[p]) + "?status=all",
        reverse("console-review", args=[p]) + f"?status=all&current={evil}",
        reverse("console-item", args=[p, evil]),
        reverse("console-clusters", args=[p]),
        reverse("console-cluster", args=[p, near]),
        reverse("console-thresholds", args=[p]),
        reverse("console-annotators", args=[p]),
        reverse("console-snapshots", args=[p]),
        reverse("console-models", args=[p]),
        reverse("console-pipeline", args=[p]),
        reverse("console-audit"),
    ]


@pytest.mark.parametrize("who", ["carol", "dave"])
def test_it_renders_every_page_for_curators_and_admins(world, project, request, who):
    user = request.getfixturevalue(who)
    c = client(user)
    for url in pages(project, world):
        response = c.get(url)
        assert response.status_code == 200, url
        assert b"<script>alert" not in response.content, url


def test_it_refuses_every_page_to_annotators(world, project, alice):
    c = client(alice)
    for url in pages(project, world):
        assert c.get(url).status_code == 403, url


@pytest.mark.parametrize(("who", "shown"), [("alice", False), ("carol", True), ("dave", True)])
def test_it_links_the_console_from_the_top_bar_for_curators_and_admins_only(project, request, who, shown):
    home = client(request.getfixturevalue(who)).get(reverse("home"))
    assert home.status_code == 200
    link = f'<a href="{reverse("console-index")}">Console</a>'.encode()
    assert (link in home.content) is shown


def test_it_escapes_item_text_everywhere_it_shows(world, project, carol):
    c = client(carol)
    item = c.get(reverse("console-item", args=[project.pk, world["evil"].pk])).content.decode()
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in item
    queue = c.get(reverse("console-review", args=[project.pk]) + f"?status=all&current={world['evil'].pk}")
    assert "&lt;script&gt;" in queue.content.decode()


def test_it_highlights_personal_data_on_the_item_page(world, project, carol):
    pii = world["curated"].decision(world["curated"].prompts[6])
    html = client(carol).get(reverse("console-item", args=[project.pk, pii.pk])).content.decode()
    assert '<mark class="pii" title="email" data-kind="email">jane.doe@example.com</mark>' in html


def test_it_shows_each_rule_against_its_threshold_and_the_history(world, project, carol):
    short = world["curated"].decision(world["curated"].short)
    c = client(carol)
    c.post(
        reverse("console-review-decide", args=[project.pk, short.pk]),
        {"action": "reject", "reason": "too terse", "next": "item"},
    )
    html = c.get(reverse("console-item", args=[project.pk, short.pk])).content.decode()
    assert "word_count" in html and "2 – 4000" in html
    assert "curation.override" in html and "too terse" in html


def test_it_decides_one_item_and_shows_the_next_without_a_reload(world, project, carol):
    c = client(carol)
    rejected = list(
        CurationDecision.objects.filter(project=project, status=Status.REJECTED)
        .order_by("id")
        .values_list("id", flat=True)
    )
    first, second = rejected[0], rejected[1]
    response = c.post(
        reverse("console-review-decide", args=[project.pk, first]),
        {"action": "keep", "status": "rejected"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html, "an htmx answer is the queue fragment, not a page"
    assert f'data-current="{second}"' in html and f"Kept item {first}." in html
    decision = CurationDecision.objects.get(pk=first)
    assert (decision.status, decision.override_status) == (Status.KEPT, Status.KEPT)
    entry = AuditLog.objects.get(action="curation.override", target_id=str(first))
    assert (
        entry.actor == carol and entry.reason == "review queue" and entry.before["status"] == Status.REJECTED
    )


def test_it_keeps_or_rejects_a_selection_in_one_go(world, project, carol):
    kept = list(
        CurationDecision.objects.filter(project=project, status=Status.KEPT).values_list("id", flat=True)[:3]
    )
    response = client(carol).post(
        reverse("console-review-bulk", args=[project.pk]),
        {"action": "reject", "ids": kept, "reason": "off topic", "status": "kept"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and b"Rejected 3 items." in response.content
    assert set(CurationDecision.objects.filter(id__in=kept).values_list("status", flat=True)) == {
        Status.REJECTED
    }
    assert AuditLog.objects.filter(action="curation.override", reason="off topic").count() == 3


def test_it_filters_and_searches_the_queue(world, project, carol):
    c = client(carol)
    url = reverse("console-review", args=[project.pk])
    found = c.get(url, {"status": "all", "q": "river stones"}).context["queue"].page.object_list
    assert world["evil"].pk in [d.pk for d in found]
    by_reason = (
        c.get(url, {"status": "rejected", "reason": "exact_duplicate"}).context["queue"].page.object_list
    )
    assert [d.pk for d in by_reason] == [world["curated"].decision(world["curated"].exact).pk]
    by_kind = c.get(url, {"status": "all", "kind": "response"}).context["queue"].page.object_list
    assert {d.kind for d in by_kind} == {"response"}
    demos = c.get(url, {"status": "all", "source": "demonstration"}).context["queue"].page.object_list
    assert [d.pk for d in demos] == [d.pk for d in by_kind]
    later = c.get(url, {"status": "all", "date_from": "2999-01-01"}).context["queue"].page.object_list
    assert list(later) == []
    nobody = c.get(url, {"status": "all", "author": "nobody"}).context["queue"].page.object_list
    assert list(nobody) == []


def test_it_streams_snapshot_files_and_only_from_the_snapshot_folder(world, project, carol, tmp_path):
    snapshot: Snapshot = world["snapshot"]
    c = client(carol)
    response = c.get(reverse("console-snapshot-file", args=[project.pk, snapshot.pk, "manifest.json"]))
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"{")
    assert response["Content-Disposition"].startswith("attachment")
    assert (
        c.get(reverse("console-snapshot-file", args=[project.pk, snapshot.pk, "..%2Fsecret"])).status_code
        == 404
    )
    # A link planted in the folder that leads outside it is refused.
    outside = tmp_path / "outside.jsonl"
    outside.write_text("secret\n")
    folder = tmp_path / "planted"
    folder.mkdir()
    (folder / "sft_train.jsonl").symlink_to(outside)
    planted = Snapshot.objects.create(
        project=project, version=99, manifest={}, content_hash="x", directory=str(folder), counts={}
    )
    assert (
        c.get(reverse("console-snapshot-file", args=[project.pk, planted.pk, "sft_train.jsonl"])).status_code
        == 404
    )


def test_the_snapshot_page_links_only_the_files_a_snapshot_has(world, project, carol, tmp_path):
    # A snapshot from before the gold export has no preferences_gold.jsonl: no dead link to it.
    older = Snapshot.objects.create(
        project=project,
        version=98,
        manifest={"files": {"sft_train.jsonl": "0" * 64}},
        content_hash="y",
        directory=str(tmp_path),
        counts={},
    )
    page = client(carol).get(reverse("console-snapshots", args=[project.pk])).content.decode()
    links = {
        name: reverse("console-snapshot-file", args=[project.pk, older.pk, name])
        for name in ("sft_train.jsonl", "manifest.json", "preferences_gold.jsonl")
    }
    assert links["sft_train.jsonl"] in page and links["manifest.json"] in page
    assert links["preferences_gold.jsonl"] not in page
    new = world["snapshot"]
    assert reverse("console-snapshot-file", args=[project.pk, new.pk, "preferences_gold.jsonl"]) in page


def test_the_models_page_says_which_version_a_model_continued_from(project, carol, tmp_path):
    v1, v2 = promoted_reward_models(project, tmp_path)
    ModelVersion.objects.filter(pk=v2.pk).update(parent=v1)
    page = client(carol).get(reverse("console-models", args=[project.pk]))
    assert page.status_code == 200
    rows = page.content.decode().split('data-version="')
    (second,) = [row for row in rows if row.startswith("2")]
    (first,) = [row for row in rows if row.startswith("1")]
    assert "continued from v1" in second and "continued from" not in first


def test_the_models_page_shows_every_kind_of_metric(project, carol, tmp_path):
    """Text, nothing, whole numbers, floats and a training summary all show; before, every
    value that was not a number came out blank."""
    v1, _v2 = promoted_reward_models(project, tmp_path)
    metrics = {
        "accuracy": 0.612345,
        "evaluated_on": "validation+gold",
        "against_number": None,
        "n": 15,
        "train": {"kind": "reward", "final_loss": 1.25, "steps": 12, "epochs": 1.0, "output_dir": "/x"},
    }
    ModelVersion.objects.filter(pk=v1.pk).update(metrics=metrics)
    page = client(carol).get(reverse("console-models", args=[project.pk])).content.decode()
    (row,) = [r for r in page.split('data-version="') if r.startswith("1")]
    for shown in ("accuracy: 0.6123", "evaluated_on: validation+gold", "against_number: –", "n: 15"):
        assert shown in row, shown
    # The summary's first four entries (PostgreSQL's jsonb keeps its own key order), and a mark
    # that there is more.
    summary = row.split("train: ")[1].split("<br>")[0]
    entries = summary.split(", ")
    assert entries[-1] == "…" and len(entries) == 5, summary
    assert set(entries[:4]) <= {"kind=reward", "final_loss=1.25", "steps=12", "epochs=1", "output_dir=/x"}


def test_the_pipeline_page_shows_the_loops_settings_and_admins_get_a_way_to_change_them(project, carol):
    from workers.pipeline import pipeline_settings_update

    pipeline_settings_update(
        project=project, actor=None, changes={"reward_warm_start": True, "selection_policy": "random"}
    )
    url = reverse("console-pipeline", args=[project.pk])
    page = client(carol).get(url).content.decode()
    settings_card = page.split('data-testid="loop-settings"')[1].split("</dl>")[0]
    assert "retrain after 50 new judgments" in settings_card and "(random)" in settings_card
    assert "continues from the deployed one" in settings_card and "trained from the base" in settings_card
    change = reverse("admin:workers_pipelinesettings_change", args=[project.pipeline_settings.pk])
    assert change not in page and "PATCH /api/v1/projects" in page
    assert change in client(make_user("dora", Role.ADMIN)).get(url).content.decode()


def test_it_applies_only_the_values_that_were_previewed(world, project, carol):
    c = client(carol)
    values = {"near_dup_threshold": "0.8", "prompt.min_words": "4"}
    preview = c.post(reverse("console-thresholds-preview", args=[project.pk]), values, HTTP_HX_REQUEST="true")
    digest = preview.context["digest"]
    assert preview.context["preview"].changed == 2
    tampered = c.post(
        reverse("console-thresholds-apply", args=[project.pk]),
        {**values, "prompt.min_words": "9", "preview_digest": digest, "reason": "stricter"},
    )
    assert tampered.status_code == 409 and not CurationSettingsRevision.objects.exists()
    applied = c.post(
        reverse("console-thresholds-apply", args=[project.pk]),
        {**values, "preview_digest": digest, "reason": "stricter"},
    )
    assert applied.status_code == 302
    assert curation_services.curation_settings(project=project).rule_overrides == {"prompt": {"min_words": 4}}
    assert CurationDecision.objects.filter(project=project, status=Status.PENDING).exists()
    progress = c.get(reverse("console-progress", args=[project.pk]))
    assert b'hx-trigger="every 1s"' in progress.content
    curation_services.project_curate(project_id=project.pk, trigger="recurate")
    done = c.get(reverse("console-progress", args=[project.pk]))
    assert b"hx-trigger" not in done.content and b"up to date" in done.content


def test_it_asks_for_a_reason_before_a_rollback_and_audits_it(world, project, carol):
    c = client(carol)
    v1 = ModelVersion.objects.get(project=project, kind=ModelKind.REWARD, number=1)
    url = reverse("console-model-rollback", args=[project.pk, v1.pk])
    assert b"Roll back to v1" in c.get(url).content
    assert c.post(url, {"reason": "  "}).status_code == 400
    assert active_deployment(project=project, kind=ModelKind.REWARD).version.number == 2
    assert c.post(url, {"reason": "v2 hurts short answers"}).status_code == 302
    assert active_deployment(project=project, kind=ModelKind.REWARD).version.number == 1
    entry = AuditLog.objects.get(action="model.rollback")
    assert entry.actor == carol and entry.reason == "v2 hurts short answers"


def test_it_lets_only_admins_force_promote(world, project, carol, dave):
    v1 = ModelVersion.objects.get(project=project, kind=ModelKind.REWARD, number=1)
    url = reverse("console-model-promote", args=[project.pk, v1.pk])
    assert client(carol).get(url).status_code == 403
    assert client(dave).post(url, {"reason": "the eval set is broken"}).status_code == 302
    assert active_deployment(project=project, kind=ModelKind.REWARD).version_id == v1.pk
    assert AuditLog.objects.get(action="model.force_promote").reason == "the eval set is broken"


def test_it_filters_the_audit_log(world, project, carol):
    c = client(carol)
    c.post(reverse("console-review-decide", args=[project.pk, world["evil"].pk]), {"action": "reject"})
    response = c.get(reverse("console-audit"), {"action": "curation.override", "actor": "carol"})
    page = response.context["page"]
    assert [e.action for e in page.object_list] == ["curation.override"]
    assert "{&quot;status&quot;: &quot;rejected&quot;" in response.content.decode()
    assert not c.get(reverse("console-audit"), {"actor": "nobody"}).context["page"].object_list


def test_it_previews_without_writing(world, project, carol):
    before = list(CurationDecision.objects.filter(project=project).values_list("id", "status", "reasons"))
    proposed = ThresholdsInput(rule_overrides={"prompt": {"min_words": 5}}, near_dup_threshold=0.5)
    client(carol).post(
        reverse("console-thresholds-preview", args=[project.pk]),
        {"near_dup_threshold": str(proposed.near_dup_threshold), "prompt.min_words": "5"},
    )
    assert (
        list(CurationDecision.objects.filter(project=project).values_list("id", "status", "reasons"))
        == before
    )
    assert not AuditLog.objects.filter(action__startswith="curation.thresholds").exists()
