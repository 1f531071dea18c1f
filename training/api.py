"""REST API for the model registry, promotion, rollback, lineage and serving."""

from __future__ import annotations

from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.api import _project
from feedback.models import Judgment
from flywheel.errors import DomainError, NotFound
from flywheel.roles import IsAdminRole, IsCurator, current_user
from training import selectors, services
from training.models import ModelKind, ModelVersion


class VersionOutputSerializer(serializers.ModelSerializer):
    snapshot_version = serializers.IntegerField(source="snapshot.version", allow_null=True, default=None)
    gate = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "kind",
            "number",
            "base",
            "parent",
            "status",
            "snapshot",
            "snapshot_version",
            "metrics",
            "progress",
            "artifact_sha256",
            "error",
            "created_at",
            "finished_at",
            "gate",
        ]

    def get_gate(self, version: ModelVersion) -> list[dict[str, Any]]:
        return [
            {
                "passed": g.passed,
                "forced": g.forced,
                "rule": g.rule,
                "numbers": g.numbers,
                "against": g.against_id,
                "decided_at": g.decided_at.isoformat(),
            }
            for g in version.gate_decisions.all()
        ]


def _version(version_id: int) -> ModelVersion:
    version = ModelVersion.objects.select_related("project", "snapshot").filter(pk=version_id).first()
    if version is None:
        raise NotFound(f"No model version with id {version_id}")
    return version


class ModelListApi(APIView):
    permission_classes = [IsCurator]

    @extend_schema(responses=VersionOutputSerializer(many=True))
    def get(self, request: Request, project_id: int) -> Response:
        project = _project(project_id)
        kind = request.query_params.get("kind")
        if kind and kind not in ModelKind.values:
            raise DomainError(f"kind must be one of {', '.join(ModelKind.values)}", field="kind")
        versions = selectors.versions_for(project_id=project.pk, kind=kind)
        deployed = {
            k: getattr(services.active_deployment(project=project, kind=k), "version_id", None)
            for k in ModelKind.values
        }
        return Response({"deployed": deployed, "versions": VersionOutputSerializer(versions, many=True).data})


class ForcePromoteApi(APIView):
    permission_classes = [IsAdminRole]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(
        request=InputSerializer,
        responses={200: inline_serializer("Deployed", {"deployed": serializers.IntegerField()})},
    )
    def post(self, request: Request, version_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = _version(version_id)
        services.model_force_promote(
            version=version, actor=current_user(request), reason=data.validated_data["reason"]
        )
        return Response({"deployed": version.pk})


class RollbackApi(APIView):
    permission_classes = [IsCurator]

    class InputSerializer(serializers.Serializer):
        version_id = serializers.IntegerField()
        reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")

    @extend_schema(
        request=InputSerializer,
        responses={200: inline_serializer("RolledBack", {"deployed": serializers.IntegerField()})},
    )
    def post(self, request: Request, project_id: int, kind: str) -> Response:
        if kind not in ModelKind.values:
            raise NotFound(f"No model kind {kind!r}; use one of {', '.join(ModelKind.values)}")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deployment = services.model_rollback(
            project=_project(project_id),
            kind=kind,
            to_version_id=data.validated_data["version_id"],
            actor=current_user(request),
            reason=data.validated_data["reason"],
        )
        return Response({"deployed": deployment.version_id})


class LineageApi(APIView):
    permission_classes = [IsCurator]

    @extend_schema(
        responses=inline_serializer(
            "Lineage", {"judgments": serializers.ListField(child=serializers.IntegerField())}
        )
    )
    def get(self, request: Request, version_id: int) -> Response:
        return Response(selectors.version_lineage(version=_version(version_id)))


class JudgmentModelsApi(APIView):
    permission_classes = [IsCurator]

    @extend_schema(responses=inline_serializer("JudgmentModels", {"models": serializers.ListField()}))
    def get(self, request: Request, judgment_id: int) -> Response:
        judgment = Judgment.objects.filter(pk=judgment_id).first()
        if judgment is None:
            raise NotFound(f"No judgment with id {judgment_id}")
        versions = selectors.models_trained_on_judgment(judgment=judgment)
        return Response(
            {
                "models": [
                    {
                        "id": v.pk,
                        "kind": v.kind,
                        "number": v.number,
                        "status": v.status,
                        "through": v.through,  # type: ignore[attr-defined]
                    }
                    for v in versions
                ]
            }
        )


def _call_inference(task: Any, **kwargs: Any) -> dict[str, Any]:
    from training.inference import NoModelDeployed

    result = task.apply_async(kwargs=kwargs)
    try:
        return result.get(timeout=settings.FLYWHEEL_INFERENCE_TIMEOUT, propagate=True)
    except CeleryTimeout:
        result.revoke()
        raise ServiceUnavailable(
            "The inference worker did not answer in time. Is a worker consuming the 'inference' queue?"
        ) from None
    except NoModelDeployed as exc:
        raise DomainError(str(exc), code="no_model_deployed") from exc


class ServiceUnavailable(DomainError):
    status = 503


class GenerateApi(APIView):
    # Serving is for engineers and pipelines; an annotator must not see model output outside
    # the comparisons they are given.
    permission_classes = [IsCurator]

    class InputSerializer(serializers.Serializer):
        prompts = serializers.ListField(
            child=serializers.CharField(max_length=8000), min_length=1, max_length=64
        )
        n = serializers.IntegerField(min_value=1, max_value=16, default=1)
        temperature = serializers.FloatField(min_value=0.0, max_value=2.0, default=0.8)
        max_new_tokens = serializers.IntegerField(min_value=1, max_value=1024, default=128)

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer(
            "Generated", {"version": serializers.IntegerField(), "outputs": serializers.ListField()}
        ),
    )
    def post(self, request: Request, project_id: int) -> Response:
        from training.tasks import generate

        project = _project(project_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(_call_inference(generate, project_id=project.pk, **data.validated_data))


class ScoreApi(APIView):
    permission_classes = [IsCurator]

    class InputSerializer(serializers.Serializer):
        prompt = serializers.CharField(max_length=32_000)
        responses = serializers.ListField(
            child=serializers.CharField(max_length=32_000), min_length=1, max_length=256
        )

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer(
            "Scored",
            {
                "version": serializers.IntegerField(),
                "scores": serializers.ListField(child=serializers.FloatField()),
            },
        ),
    )
    def post(self, request: Request, project_id: int) -> Response:
        from training.tasks import score

        project = _project(project_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(
            _call_inference(score, project_id=project.pk, **data.validated_data), status=status.HTTP_200_OK
        )
