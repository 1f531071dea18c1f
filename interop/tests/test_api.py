"""The interop endpoints: upload, streamed export, Parquet, Label Studio links, sync now."""

from __future__ import annotations

import io
import json

from rest_framework.test import APIClient

from feedback.models import Judgment
from flywheel.models import AuditLog, User
from interop.models import LabelStudioLink
from interop.tests.test_imports import HH
from interop.tests.test_round_trips import native_project


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def body(*rows: dict) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def test_it_imports_a_raw_body_and_a_multipart_file(project, carol):
    client = client_for(carol)
    url = f"/api/v1/projects/{project.pk}/interop/hh/import?source=hh-helpful"
    raw = client.post(url, body(HH[0]) + b"garbage\n", content_type="application/x-ndjson")
    assert raw.status_code == 200, raw.content
    assert raw.json()["created"]["judgment"] == 1
    assert raw.json()["errors"] == [{"line": 2, "reason": "invalid JSON: Expecting value at column 1"}]
    upload = io.BytesIO(body(*HH))
    upload.name = "hh.jsonl"
    multi = client.post(url, {"file": upload}, format="multipart")
    assert multi.status_code == 200, multi.content
    assert multi.json()["created"] == {"comparison": 1, "judgment": 1, "prompt": 1, "response": 2}
    assert multi.json()["existing"] == 1
    assert Judgment.objects.filter(annotator__username="import-hh-helpful").count() == 2


def test_it_refuses_annotators_and_unknown_formats(project, alice, carol):
    url = f"/api/v1/projects/{project.pk}/interop/hh/import"
    assert client_for(alice).post(url, body(HH[0]), content_type="application/x-ndjson").status_code == 403
    assert client_for(alice).get(f"/api/v1/projects/{project.pk}/interop/hh/export").status_code == 403
    unknown = client_for(carol).get(f"/api/v1/projects/{project.pk}/interop/csv/export")
    assert unknown.status_code == 404 and "trl-preference" in unknown.json()["detail"]
    bad_style = client_for(carol).get(f"/api/v1/projects/{project.pk}/interop/trl-sft/export?style=chat")
    assert bad_style.status_code == 400


def test_it_streams_an_export_and_serves_parquet(db, carol):
    import pyarrow.parquet as pq

    project = native_project()
    client = client_for(carol)
    streamed = client.get(f"/api/v1/projects/{project.pk}/interop/trl-preference/export?style=conversational")
    assert streamed.status_code == 200 and streamed.streaming
    rows = [json.loads(line) for line in b"".join(streamed.streaming_content).splitlines()]
    assert len(rows) == 4 and rows[0]["chosen"] == [{"role": "assistant", "content": "7."}]
    parquet = client.get(f"/api/v1/projects/{project.pk}/interop/arena/export?to=parquet")
    assert parquet.status_code == 200
    table = pq.read_table(io.BytesIO(b"".join(parquet.streaming_content)))
    assert table.num_rows == 8 and "conversation_a" in table.column_names


def test_it_saves_a_label_studio_link_without_ever_showing_the_token(project, carol):
    client = client_for(carol)
    url = f"/api/v1/projects/{project.pk}/label-studio"
    created = client.post(url, {"url": "http://ls.example.com/", "token": "s3cret-token"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["url"] == "http://ls.example.com" and created.json()["kind"] == "comparison"
    changed = client.post(
        url, {"url": "http://ls.example.com", "token": "other", "ls_project_id": 7}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["ls_project_id"] == 7
    listed = client.get(url)
    assert [link["ls_project_id"] for link in listed.json()] == [7]
    assert b"s3cret" not in listed.content and b"other" not in listed.content
    assert LabelStudioLink.objects.get().token == "other"
    assert AuditLog.objects.filter(action="label_studio.link_save").count() == 2
    assert "token" not in json.dumps(list(AuditLog.objects.values_list("after", flat=True)))
    refused = client.post(url, {"url": "ftp://ls", "token": "x"}, format="json")
    assert refused.status_code == 400 and refused.json()["field"] == "url"


def test_it_queues_a_sync_now_and_says_when_there_is_nothing_to_sync(
    project, carol, django_capture_on_commit_callbacks
):
    client = client_for(carol)
    sync = f"/api/v1/projects/{project.pk}/label-studio/sync"
    assert client.post(sync).status_code == 409
    client.post(
        f"/api/v1/projects/{project.pk}/label-studio",
        {"url": "http://127.0.0.1:9", "token": "t"},
        format="json",
    )
    with django_capture_on_commit_callbacks() as callbacks:
        queued = client.post(sync)
    assert queued.status_code == 202 and queued.json() == {"queued": [LabelStudioLink.objects.get().pk]}
    assert len(callbacks) == 1
