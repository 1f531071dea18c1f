"""Role checks shared by views and API classes."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission

from flywheel.models import Role, User

CURATORS = (Role.CURATOR, Role.ADMIN)


def role_required(*roles: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if getattr(request.user, "role", None) not in roles:
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class IsCurator(BasePermission):
    message = "This needs the curator or admin role."

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.role in CURATORS)


class IsAdminRole(BasePermission):
    message = "This needs the admin role."

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.role == Role.ADMIN)


def current_user(request: Any) -> User:
    """The signed-in user, typed. Views reach here only behind login_required / IsAuthenticated."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user
