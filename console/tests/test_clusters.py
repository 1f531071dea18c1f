"""Changing a cluster's representative, and keeping or rejecting a whole cluster."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from console import services as console_services
from console.tests.factories import curated_project
from curation import services
from curation.models import CurationDecision, Status
from flywheel.errors import Conflict
from flywheel.models import AuditLog

pytestmark = pytest.mark.django_db


def test_it_makes_a_member_the_representative_and_re_points_the_cluster(project, carol):
    world = curated_project(project)
    old = world.decision(world.base)
    new = world.decision(world.near)
    exact = world.decision(world.exact)
    assert new.cluster_representative_id == old.pk and exact.cluster_representative_id == old.pk

    services.cluster_set_representative(
        decision_id=new.pk, actor=carol, reason="the edited wording is better"
    )

    old.refresh_from_db(), new.refresh_from_db(), exact.refresh_from_db()
    assert new.cluster_representative_id == new.pk and new.status == Status.KEPT
    assert not [r for r in new.reasons if r["rule"].endswith("duplicate")]
    assert old.cluster_representative_id == new.pk and old.status == Status.REJECTED
    assert old.reasons[-1]["rule"] == "near_duplicate" and old.reasons[-1]["of"] == new.pk
    # The exact twin of the old representative is a near duplicate of the new one, with its
    # own Jaccard measured against it.
    assert exact.cluster_representative_id == new.pk and exact.status == Status.REJECTED
    assert exact.duplicate_jaccard == pytest.approx(old.duplicate_jaccard)
    entry = AuditLog.objects.get(action="curation.cluster_representative")
    assert (entry.actor, entry.target_id, entry.reason) == (
        carol,
        str(new.pk),
        "the edited wording is better",
    )
    assert entry.before == {"representative": old.pk, "status": Status.REJECTED}
    assert entry.after["representative"] == new.pk and entry.after["status"] == Status.KEPT
    repointed = AuditLog.objects.filter(action="curation.cluster_repoint")
    assert {e.target_id for e in repointed} >= {str(old.pk), str(exact.pk)}
    assert repointed.get(target_id=str(old.pk)).before == {"representative": old.pk, "status": Status.KEPT}


def test_it_keeps_an_override_when_the_representative_changes(project, carol):
    world = curated_project(project)
    old, new = world.decision(world.base), world.decision(world.near)
    services.decision_override(decision_id=old.pk, actor=carol, status=Status.KEPT, reason="both are fine")
    services.cluster_set_representative(decision_id=new.pk, actor=carol)
    old.refresh_from_db()
    assert old.status == Status.KEPT and old.pipeline_status == Status.REJECTED


def test_it_refuses_a_representative_change_while_the_cluster_is_pending(project, carol):
    world = curated_project(project)
    near = world.decision(world.near)
    CurationDecision.objects.filter(pk=world.decision(world.exact).pk).update(status=Status.PENDING)
    with pytest.raises(Conflict):
        services.cluster_set_representative(decision_id=near.pk, actor=carol)
    near.refresh_from_db()
    assert near.status == Status.REJECTED
    assert not AuditLog.objects.filter(action__startswith="curation.cluster").exists()


def test_it_refuses_to_make_the_representative_the_representative(project, carol):
    world = curated_project(project)
    with pytest.raises(Conflict):
        services.cluster_set_representative(decision_id=world.decision(world.base).pk, actor=carol)


def test_it_keeps_a_whole_cluster_with_an_audited_override_on_each_member(project, carol):
    world = curated_project(project)
    rep = world.decision(world.base)
    members = list(CurationDecision.objects.filter(cluster_representative_id=rep.pk))
    assert len(members) >= 3

    count = services.cluster_decide(
        decision_id=world.decision(world.near).pk, actor=carol, status=Status.KEPT
    )

    assert count == len(members)
    statuses = set(
        CurationDecision.objects.filter(cluster_representative_id=rep.pk).values_list(
            "status", "override_status"
        )
    )
    assert statuses == {(Status.KEPT, Status.KEPT)}
    assert AuditLog.objects.filter(action="curation.override", actor=carol).count() == len(members)
    summary = AuditLog.objects.get(action="curation.cluster_decide")
    assert summary.target_id == str(rep.pk) and sorted(summary.after["members"]) == sorted(
        m.pk for m in members
    )


def test_it_rejects_a_whole_cluster(project, carol):
    world = curated_project(project)
    rep = world.decision(world.base)
    services.cluster_decide(decision_id=rep.pk, actor=carol, status=Status.REJECTED, reason="spam")
    rep.refresh_from_db()
    assert rep.status == Status.REJECTED and rep.override_reason == "spam"


@pytest.mark.parametrize(
    ("reason", "refusal"),
    [("x" * (services.MAX_REASON_CHARS + 1), "the limit is 2,000"), ("why\x00not", "reason")],
)
def test_a_bad_reason_is_refused_by_name_on_every_console_form_that_takes_one(
    project, carol, reason, refusal
):
    """Representative, keep/reject a cluster, and restore thresholds: refused with a message,
    nothing changed, never cut short or passed on to the database."""
    world = curated_project(project)
    new = world.decision(world.near)
    rep = world.decision(world.base)
    console_services.thresholds_apply(
        project=project,
        actor=carol,
        rule_overrides={},
        near_dup_threshold=0.7,
        reason="first",
        recurate=False,
    )
    audits = AuditLog.objects.count()
    client = Client()
    client.force_login(carol)
    posts = [
        (reverse("console-cluster-representative", args=[project.pk, new.pk]), {"reason": reason}),
        (
            reverse("console-cluster-decide", args=[project.pk, rep.pk]),
            {"reason": reason, "action": "reject"},
        ),
        (reverse("console-thresholds-restore", args=[project.pk]), {"reason": reason}),
    ]
    for url, data in posts:
        page = client.post(url, data)
        assert page.status_code == 302, url
        shown = [str(m) for m in get_messages(page.wsgi_request)]
        assert any(refusal in m for m in shown), (url, shown)
    assert AuditLog.objects.count() == audits
    new.refresh_from_db(), rep.refresh_from_db()
    assert new.cluster_representative_id == rep.pk and rep.status == Status.KEPT
