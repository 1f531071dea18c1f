from django.contrib import admin

from training.models import GateSettings


@admin.register(GateSettings)
class GateSettingsAdmin(admin.ModelAdmin):
    """Each project's promotion gate, for admins: the reward rule (margin or not_worse) and the
    thresholds. Rows are made with their defaults the first time a project's gate is read."""

    list_display = (
        "project",
        "reward_rule",
        "reward_min_gain_points",
        "reward_use_gold",
        "policy_min_ci_low",
        "policy_eval_prompts",
    )
    list_filter = ("reward_rule",)
    list_select_related = ("project",)
    readonly_fields = ("project",)

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
