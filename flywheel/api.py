"""API plumbing shared by every app: domain errors become clear 4xx answers."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from flywheel.errors import DomainError


class AutoSchema(SpectacularAutoSchema):
    """Names a nested serializer after the API class it lives in.

    House style nests an InputSerializer in every XxxApi. drf-spectacular names components by
    class name alone, so all of them would collapse into one "Input" component and the schema
    would describe every request but one wrongly (`spectacular --fail-on-warn` catches it).
    """

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        outer, _, name = type(serializer).__qualname__.rpartition(".")
        if outer and "<locals>" not in outer:
            return outer.rpartition(".")[2].removesuffix("Api") + name
        return name


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body["field"] = exc.field
        return Response(body, status=exc.status)
    return drf_exception_handler(exc, context)
