"""Comparing two snapshots: what one holds that the other does not, grouped by why."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from console import selectors
from console.tests.factories import curated_project
from curation import services as curation_services
from curation.models import CurationDecision, Snapshot, SnapshotItem, Status
from curation.snapshots import MAX_NOTE_CHARS, snapshot_create
from curation.tests.factories import add_demo, add_prompt, paragraph

pytestmark = pytest.mark.django_db


def test_it_compares_two_snapshots_by_what_was_added_and_removed_and_why(project, carol):
    curated_project(project)
    first = snapshot_create(project=project, actor=carol)
    in_first = SnapshotItem.objects.filter(snapshot=first, response__isnull=False).first()
    assert in_first is not None, "the project should export a demonstration to remove"
    dropped = CurationDecision.objects.get(response_id=in_first.response_id)
    curation_services.decision_override(
        decision_id=dropped.pk, actor=carol, status=Status.REJECTED, reason="wrong answer"
    )
    fresh = add_demo(add_prompt(project, paragraph(90)), paragraph(91, 30))
    curation_services.project_curate(project_id=project.pk)
    assert CurationDecision.objects.get(response=fresh).status == Status.KEPT
    second = snapshot_create(project=project, actor=carol)

    diff = selectors.snapshot_compare(a=first, b=second)
    assert (diff.added, diff.removed) == (1, 1)
    assert diff.removed_by_reason == [("demonstration: response rejected by a curator", 1)]
    assert diff.added_by_reason == [("demonstration: new since v1", 1)]
    assert diff.unchanged == SnapshotItem.objects.filter(snapshot=first).count() - 1
    # The other way round, the same rows swap sides.
    back = selectors.snapshot_compare(a=second, b=first)
    assert (back.added, back.removed, back.unchanged) == (1, 1, diff.unchanged)

    client = Client()
    client.force_login(carol)
    page = client.get(reverse("console-snapshot-compare", args=[project.pk]), {"a": first.pk, "b": second.pk})
    assert page.status_code == 200
    assert "response rejected by a curator" in page.content.decode()


def test_a_note_over_the_limit_is_refused_and_kept_in_the_form_not_cut_short(project, carol):
    curated_project(project)
    client = Client()
    client.force_login(carol)
    url = reverse("console-snapshot-create", args=[project.pk])
    long_note = "why " * (MAX_NOTE_CHARS // 4) + "this"

    page = client.post(url, {"note": long_note})
    assert page.status_code == 400
    body = page.content.decode()
    assert f"the limit is {MAX_NOTE_CHARS:,}" in body
    assert f'value="{long_note}"' in body, "the refused note should come back in the form"
    assert not Snapshot.objects.filter(project=project).exists()

    done = client.post(url, {"note": "  first cut  "})
    assert done.status_code == 302
    assert Snapshot.objects.get(project=project).note == "first cut"
