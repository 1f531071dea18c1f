"""Pipeline runs over the API: list, run now, retry; and the project's pipeline settings."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.api import _project
from flywheel.errors import InvalidInput, NotFound
from flywheel.roles import IsAdminRole, IsCurator, current_user
from workers import pipeline
from workers.models import PipelineRun, PipelineSettings


class RunOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = PipelineRun
        fields = [
            "id",
            "trigger",
            "status",
            "steps",
            "error",
            "snapshot",
            "reward_version",
            "policy_version",
            "created_at",
            "started_at",
            "finished_at",
            "log",
        ]


class PipelineRunListApi(APIView):
    permission_classes = [IsCurator]

    @extend_schema(responses=RunOutputSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        runs = PipelineRun.objects.filter(project=_project(project_id))[:50]
        return Response(RunOutputSerializer(runs, many=True).data)

    @extend_schema(request=None, responses={201: RunOutputSerializer})
    def post(self, request: Request, project_id: int) -> Response:
        """Run now: snapshot, retrain, gate, redeploy, generate, pair. 409 if a run is active."""
        run = pipeline.pipeline_run_start(
            project=_project(project_id), trigger="api", actor=current_user(request)
        )
        return Response(RunOutputSerializer(run).data, status=status.HTTP_201_CREATED)


class SettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = PipelineSettings
        fields = list(pipeline.SETTINGS_FIELDS)


class PipelineSettingsApi(APIView):
    """The project's retraining loop: trigger, candidates, selection policy, bases, warm start
    and training options. Curators read them; admins change them (audited)."""

    def get_permissions(self) -> list[Any]:
        return [IsAdminRole()] if self.request.method == "PATCH" else [IsCurator()]

    @extend_schema(responses=SettingsSerializer)
    def get(self, request: Request, project_id: int) -> Response:
        return Response(SettingsSerializer(pipeline.pipeline_settings(project=_project(project_id))).data)

    @extend_schema(request=SettingsSerializer, responses=SettingsSerializer)
    def patch(self, request: Request, project_id: int) -> Response:
        project = _project(project_id)
        if not isinstance(request.data, dict):
            raise InvalidInput("Send an object of the settings to change")
        pipeline.settings_known_check(request.data)
        data = SettingsSerializer(
            pipeline.pipeline_settings(project=project), data=request.data, partial=True
        )
        data.is_valid(raise_exception=True)
        cfg = pipeline.pipeline_settings_update(
            project=project, actor=current_user(request), changes=dict(data.validated_data)
        )
        return Response(SettingsSerializer(cfg).data)


class PipelineRunRetryApi(APIView):
    permission_classes = [IsCurator]

    @extend_schema(request=None, responses={201: RunOutputSerializer})
    def post(self, request: Request, run_id: int) -> Response:
        run = PipelineRun.objects.filter(pk=run_id).select_related("project").first()
        if run is None:
            raise NotFound(f"No pipeline run with id {run_id}")
        new = pipeline.pipeline_run_retry(run=run, actor=current_user(request))
        return Response(RunOutputSerializer(new).data, status=status.HTTP_201_CREATED)
