from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from flywheel.models import AuditLog, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "role", "trust", "is_active", "judgments_excluded")
    list_filter = ("role", "is_active", "judgments_excluded")
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("Flywheel", {"fields": ("role", "trust", "judgments_excluded")}),
    )


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor", "action", "target_type", "target_id")
    list_filter = ("action", "target_type")
    readonly_fields = [f.name for f in AuditLog._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
