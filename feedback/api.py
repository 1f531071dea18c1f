"""REST API for collection: import, next-task and submit, exports."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback import selectors, services
from feedback.models import Choice, ComparisonTask, JudgmentSource, Project, Strength
from flywheel.db import row_get
from flywheel.errors import DomainError, InvalidInput, NotFound
from flywheel.roles import IsAdminRole, IsCurator, current_user


def _project(project_id: int) -> Project:
    project = row_get(Project, project_id)
    if project is None:
        raise NotFound(f"No project with id {project_id}")
    return project


class JsonLinesParser(BaseParser):
    """Hands the request body over as a stream so a large import is never read whole."""

    media_type = "application/x-ndjson"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream


class JsonlPlainParser(JsonLinesParser):
    media_type = "application/jsonl"


def _jsonl(rows: Iterator[dict[str, Any]]) -> StreamingHttpResponse:
    return StreamingHttpResponse(
        (json.dumps(row, ensure_ascii=False) + "\n" for row in rows), content_type="application/x-ndjson"
    )


class ProjectOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "guidelines",
            "overlap_k",
            "gold_rate",
            "lease_seconds",
            "compare_enabled",
            "write_enabled",
            "is_active",
        ]


class ProjectListApi(APIView):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        guidelines = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
        overlap_k = serializers.IntegerField(required=False, min_value=1, max_value=50, default=3)
        gold_rate = serializers.FloatField(required=False, min_value=0, max_value=1, default=0.1)
        lease_seconds = serializers.IntegerField(required=False, min_value=10, max_value=86_400, default=600)

    def get_permissions(self) -> list[Any]:
        return [IsAdminRole()] if self.request.method == "POST" else list(super().get_permissions())

    @extend_schema(responses=ProjectOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        projects = selectors.projects_for(user=current_user(request))
        return Response(ProjectOutputSerializer(projects, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: ProjectOutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_create(actor=current_user(request), **data.validated_data)
        return Response(ProjectOutputSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectImportApi(APIView):
    """Bulk import of prompts, responses and comparison tasks as JSON Lines.

    Send the file as multipart field `file`, or the raw body as `application/x-ndjson`.
    Each line is an object with `type` (prompt, response, comparison) and an `external_id`
    that makes re-imports idempotent. Invalid lines are reported with their line number.
    """

    permission_classes = [IsCurator]
    parser_classes = [JsonLinesParser, JsonlPlainParser, MultiPartParser]

    @extend_schema(
        request={
            "application/x-ndjson": OpenApiTypes.STR,
            "multipart/form-data": inline_serializer("ImportUpload", {"file": serializers.FileField()}),
        },
        responses={
            200: inline_serializer(
                "ImportReport",
                {
                    "lines": serializers.IntegerField(),
                    "created": serializers.DictField(child=serializers.IntegerField()),
                    "existing": serializers.IntegerField(),
                    "errors": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = _project(project_id)
        upload = request.FILES.get("file") if hasattr(request, "FILES") else None
        if upload is not None:
            lines: Any = upload
        elif request.content_type.split(";")[0] in (JsonLinesParser.media_type, JsonlPlainParser.media_type):
            stream: Any = request.data
            # DRF never calls the parser for an empty body and hands over {} instead.
            lines = iter(stream.readline, b"") if hasattr(stream, "readline") else iter(())
        else:
            raise InvalidInput(
                "Send JSON Lines as multipart field 'file' or as an application/x-ndjson body",
                field="file",
            )
        report = services.jsonl_import(project=project, lines=lines, actor=current_user(request))
        return Response(report.as_dict())


class AssignmentOutputSerializer(serializers.Serializer):
    assignment_id = serializers.IntegerField(source="pk")
    task_id = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    shown_left = serializers.CharField(
        source="left_side", help_text="Which response the UI draws on the left."
    )
    prompt = serializers.CharField(source="task.prompt.text")
    response_a = serializers.CharField(source="task.response_a.text")
    response_b = serializers.CharField(source="task.response_b.text")


class NextTaskApi(APIView):
    @extend_schema(
        request=None,
        responses={200: AssignmentOutputSerializer, 204: OpenApiResponse(description="No task left for you")},
    )
    def post(self, request: Request, project_id: int) -> Response:
        # The lease comes back with its texts loaded: no second fetch.
        assignment = services.assignment_next(project=_project(project_id), annotator=current_user(request))
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(_ASSIGNMENT_OUTPUT.to_representation(assignment))


class JudgmentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    task_id = serializers.IntegerField()
    choice = serializers.CharField()
    strength = serializers.CharField()
    rationale = serializers.CharField()
    created_at = serializers.DateTimeField()


# Every judgment renders both of these. A serializer deep-copies its fields for each new
# instance, which costs more than rendering; to_representation keeps no state between calls,
# so one shared instance of each renders every response.
_ASSIGNMENT_OUTPUT = AssignmentOutputSerializer()
_JUDGMENT_OUTPUT = JudgmentOutputSerializer()


class SubmitOutputSerializer(JudgmentOutputSerializer):
    next = AssignmentOutputSerializer(
        required=False,
        allow_null=True,
        help_text='With "next": true, the next lease (as next-task gives it), or null when none is left.',
    )
    next_error = serializers.CharField(
        required=False, help_text="Why no next lease was handed out, when that is not just an empty queue."
    )


class SubmitApi(APIView):
    """Record a judgment. With "next": true, the answer also carries the next lease, which
    saves a programmatic annotator the next-task request (the web UI works the same way)."""

    class InputSerializer(serializers.Serializer):
        choice = serializers.ChoiceField(choices=Choice.choices)
        strength = serializers.ChoiceField(
            choices=Strength.choices, required=False, allow_blank=True, default=""
        )
        rationale = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            max_length=services.MAX_RATIONALE_CHARS,
            trim_whitespace=False,
        )
        time_spent_ms = serializers.IntegerField(
            required=False, min_value=0, max_value=86_400_000, allow_null=True
        )
        idempotency_key = serializers.CharField(
            required=False, allow_blank=True, default="", max_length=services.MAX_KEY_CHARS
        )
        next = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        request=InputSerializer, responses={201: SubmitOutputSerializer, 200: SubmitOutputSerializer}
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        # The service checks the lease before the body: an unknown or foreign id is the
        # answer, whatever the body says. It also checks every field (InputSerializer above
        # documents them for the schema), so they are not parsed twice on the hot path.
        body = request.data if isinstance(request.data, Mapping) else {}
        want_next = body.get("next", False)
        if not isinstance(want_next, bool):
            raise InvalidInput("next must be true or false", field="next")
        judgment, created = services.comparison_submit(
            assignment=assignment_id,
            annotator=current_user(request),
            source=JudgmentSource.API,
            choice=body.get("choice"),
            strength=body.get("strength", ""),
            rationale=body.get("rationale", ""),
            time_spent_ms=body.get("time_spent_ms"),
            idempotency_key=body.get("idempotency_key", ""),
        )
        answer = _JUDGMENT_OUTPUT.to_representation(judgment)
        if want_next:
            # The judgment is in whatever happens here: a refusal to lease (comparisons just
            # turned off, say) must not read as a failed submit.
            try:
                # A new judgment carries its project as the submit read it; a replayed one not.
                task = judgment.task
                project = (
                    task.project if ComparisonTask.project.is_cached(task) else _project(task.project_id)
                )
                lease = services.assignment_next(project=project, annotator=current_user(request))
            except DomainError as exc:
                lease = None
                answer["next_error"] = exc.message
            answer["next"] = None if lease is None else _ASSIGNMENT_OUTPUT.to_representation(lease)
        return Response(answer, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class SkipApi(APIView):
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=services.MAX_SKIP_REASON_CHARS)

    @extend_schema(request=InputSerializer, responses={200: OpenApiResponse(description="Skipped")})
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = services.assignment_get(assignment_id=assignment_id, annotator=current_user(request))
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.assignment_skip(
            assignment=assignment, annotator=current_user(request), reason=data.validated_data["reason"]
        )
        return Response({"assignment_id": assignment.pk, "state": "skipped"})


class JudgmentExportApi(APIView):
    """Every judgment of a project, one JSON object per line."""

    permission_classes = [IsCurator]

    @extend_schema(responses={(200, "application/x-ndjson"): OpenApiTypes.STR})
    def get(self, request: Request, project_id: int) -> StreamingHttpResponse:
        project = _project(project_id)
        rows = selectors.judgments_for_export(project=project).iterator(chunk_size=2000)
        return _jsonl(selectors.judgment_as_dict(j) for j in rows)


class PreferenceExportApi(APIView):
    """The trust-weighted aggregated preference of every judged comparison, as JSON Lines."""

    permission_classes = [IsCurator]

    @extend_schema(responses={(200, "application/x-ndjson"): OpenApiTypes.STR})
    def get(self, request: Request, project_id: int) -> StreamingHttpResponse:
        project = _project(project_id)

        def rows() -> Iterator[dict[str, Any]]:
            for pref in selectors.aggregated_preferences(project=project):
                task, agg = pref.task, pref.aggregate
                yield {
                    "task_id": task.pk,
                    "external_id": task.external_id,
                    "prompt": task.prompt.text,
                    "response_a": task.response_a.text,
                    "response_b": task.response_b.text,
                    "winner": agg.winner,
                    "agreement": round(agg.agreement, 4),
                    "votes": agg.votes,
                    "weights": {k: round(v, 4) for k, v in sorted(agg.weights.items())},
                    "margin": round(agg.margin, 4),
                }

        return _jsonl(rows())


class AnnotatorStatsApi(APIView):
    permission_classes = [IsCurator]

    @extend_schema(
        responses=inline_serializer(
            "AnnotatorStats",
            {"annotators": serializers.ListField(), "alpha": serializers.FloatField(allow_null=True)},
        )
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = _project(project_id)
        stats = selectors.annotator_stats(project=project)
        return Response(
            {"alpha": selectors.project_agreement(project=project), "annotators": [vars(s) for s in stats]}
        )
