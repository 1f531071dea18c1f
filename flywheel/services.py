from __future__ import annotations

from typing import Any

from django.db import transaction

from flywheel.models import AuditLog, Role, User


def audit_record(
    *,
    actor: User | None,
    action: str,
    target: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditLog:
    return AuditLog.objects.create(
        actor=actor,
        action=action,
        target_type=type(target)._meta.label_lower
        if hasattr(target, "_meta")
        else str(type(target).__name__),
        target_id=str(getattr(target, "pk", target)),
        before=before,
        after=after,
        reason=reason,
    )


def user_ensure(*, username: str, role: Role, password: str, email: str = "") -> tuple[User, bool]:
    """Create a user with a role, or return the existing one untouched (seeding is re-runnable)."""
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username, defaults={"role": role, "email": email})
        if created:
            user.set_password(password)
            user.is_staff = role == Role.ADMIN
            user.is_superuser = role == Role.ADMIN
            user.save()
    return user, created


def user_set_role(*, actor: User, user: User, role: Role, reason: str = "") -> User:
    with transaction.atomic():
        before = {"role": user.role}
        user.role = role
        user.is_staff = role == Role.ADMIN
        user.is_superuser = role == Role.ADMIN
        user.save(update_fields=["role", "is_staff", "is_superuser"])
        audit_record(
            actor=actor,
            action="user.set_role",
            target=user,
            before=before,
            after={"role": role},
            reason=reason,
        )
    return user
