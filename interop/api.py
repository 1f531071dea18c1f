"""REST API for interop: import and export in other formats, Label Studio links and sync.

All of it is for curators and admins: it moves a whole project's data in or out.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.api import JsonLinesParser, JsonlPlainParser
from flywheel.errors import Conflict, InvalidInput
from flywheel.parsers import JSONParser
from flywheel.roles import IsCurator, current_user
from interop import selectors, services
from interop.formats.registry import FORMATS
from interop.models import LinkKind

ReportSerializer = inline_serializer(
    "InteropImportReport",
    {
        "format": serializers.CharField(),
        "lines": serializers.IntegerField(),
        "records": serializers.IntegerField(),
        "created": serializers.DictField(child=serializers.IntegerField()),
        "updated": serializers.DictField(child=serializers.IntegerField()),
        "existing": serializers.IntegerField(),
        "error_count": serializers.IntegerField(),
        "errors": serializers.ListField(child=serializers.DictField()),
    },
)


class InteropImportApi(APIView):
    """Import a file in another format: trl-preference, trl-sft, hh, oasst or arena.

    Send JSON Lines as multipart field `file`, or as the raw body (`application/x-ndjson`);
    either is read a line at a time. Bad lines come back with their number and reason and the
    rest import; importing the same file again creates nothing new. `?source=NAME` names the
    dataset, and the importer annotator its judgments are attributed to (default: the format).
    """

    permission_classes = [IsCurator]
    parser_classes = [JsonLinesParser, JsonlPlainParser, MultiPartParser]

    @extend_schema(
        parameters=[
            OpenApiParameter("format_name", str, OpenApiParameter.PATH, enum=list(FORMATS)),
            OpenApiParameter("source", str, description="Dataset name the judgments are attributed to"),
        ],
        request={
            "application/x-ndjson": OpenApiTypes.STR,
            "multipart/form-data": inline_serializer("InteropUpload", {"file": serializers.FileField()}),
        },
        responses={200: ReportSerializer},
    )
    def post(self, request: Request, project_id: int, format_name: str) -> Response:
        project = selectors.project_get(project_id=project_id)
        format = selectors.format_get(name=format_name)
        upload = request.FILES.get("file") if hasattr(request, "FILES") else None
        if upload is not None:
            lines: Any = upload
        elif request.content_type.split(";")[0] in (JsonLinesParser.media_type, JsonlPlainParser.media_type):
            stream: Any = request.data
            # DRF never calls the parser for an empty body and hands over {} instead.
            lines = iter(stream.readline, b"") if hasattr(stream, "readline") else iter(())
        else:
            raise InvalidInput(
                "Send JSON Lines as multipart field 'file' or as an application/x-ndjson body", field="file"
            )
        report = services.interop_import(
            project=project,
            format=format,
            lines=lines,
            actor=current_user(request),
            source_name=request.query_params.get("source", ""),
        )
        return Response(report.as_dict())


class InteropExportApi(APIView):
    """Export a project in another format, streamed as JSON Lines, or with `?to=parquet` as a
    Parquet file. `?style=` picks a variant: trl-preference `standard` or `conversational`,
    trl-sft `messages` or `prompt-completion`."""

    permission_classes = [IsCurator]

    @extend_schema(
        parameters=[
            OpenApiParameter("format_name", str, OpenApiParameter.PATH, enum=list(FORMATS)),
            OpenApiParameter("style", str),
            OpenApiParameter("to", str, enum=["jsonl", "parquet"]),
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            (200, "application/vnd.apache.parquet"): OpenApiTypes.BINARY,
        },
    )
    def get(
        self, request: Request, project_id: int, format_name: str
    ) -> StreamingHttpResponse | FileResponse:
        project = selectors.project_get(project_id=project_id)
        format = selectors.format_get(name=format_name)
        to = request.query_params.get("to", "jsonl")
        style = request.query_params.get("style") or None
        if to == "jsonl":
            lines = selectors.export_lines(project=project, format=format, style=style)
            response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
            response["Content-Disposition"] = f'attachment; filename="{format}-{project.pk}.jsonl"'
            return response
        if to != "parquet":
            raise InvalidInput(
                "to must be jsonl or parquet (hf-disk writes a folder: use the command)", field="to"
            )
        from interop.formats.hf import write_dataset

        lines = selectors.export_lines(project=project, format=format, style=style, typed=True)
        folder = tempfile.mkdtemp(prefix="flywheel-export-")
        path = Path(folder) / f"{format}-{project.pk}.parquet"
        write_dataset(lines, path, to="parquet", schema=selectors.export_schema(format=format, style=style))
        handle = path.open("rb")
        # The file is gone from the folder at once; the open handle keeps it until sent.
        path.unlink()
        Path(folder).rmdir()
        return FileResponse(
            handle, as_attachment=True, filename=path.name, content_type="application/vnd.apache.parquet"
        )


class LinkOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField()
    kind = serializers.CharField()
    url = serializers.CharField()
    ls_project_id = serializers.IntegerField(allow_null=True)
    enabled = serializers.BooleanField()
    syncing = serializers.BooleanField()
    last_attempt_at = serializers.DateTimeField(allow_null=True)
    last_synced_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField()
    last_report = serializers.DictField()
    tasks_pushed = serializers.IntegerField()
    annotations_pulled = serializers.IntegerField()


class LabelStudioLinkListApi(APIView):
    """A project's Label Studio links (one per kind). POST creates or changes one; the token is
    never shown back."""

    permission_classes = [IsCurator]

    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=LinkKind.choices, default=LinkKind.COMPARISON)
        url = serializers.CharField(max_length=500)
        token = serializers.CharField(max_length=500)
        ls_project_id = serializers.IntegerField(required=False, allow_null=True, min_value=1)
        new_project = serializers.BooleanField(default=False)
        enabled = serializers.BooleanField(default=True)

    @extend_schema(responses=LinkOutputSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get(project_id=project_id)
        return Response(
            [
                selectors.label_studio_link_as_dict(link)
                for link in selectors.label_studio_links(project=project)
            ]
        )

    @extend_schema(request=InputSerializer, responses={200: LinkOutputSerializer, 201: LinkOutputSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        project = selectors.project_get(project_id=project_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        link, created = services.label_studio_link_save(
            project=project, actor=current_user(request), **data.validated_data
        )
        return Response(
            selectors.label_studio_link_as_dict(link),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class LabelStudioSyncApi(APIView):
    """Sync now: queue a sync of each of the project's enabled Label Studio links. The outcome
    lands on the link (GET .../label-studio: last_synced_at, last_error, last_report)."""

    permission_classes = [IsCurator]
    parser_classes = [JSONParser]

    @extend_schema(
        request=None,
        responses={202: inline_serializer("LabelStudioSyncQueued", {"queued": serializers.ListField()})},
    )
    def post(self, request: Request, project_id: int) -> Response:
        from interop.tasks import label_studio_sync

        project = selectors.project_get(project_id=project_id)
        link_ids = selectors.label_studio_link_ids(project=project)
        if not link_ids:
            raise Conflict("This project has no enabled Label Studio link; add one first", code="no_link")
        for link_id in link_ids:
            label_studio_sync.delay_on_commit(link_id, trigger="api")
        return Response({"queued": link_ids}, status=status.HTTP_202_ACCEPTED)
