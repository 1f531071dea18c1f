from django.contrib import admin

from feedback.models import Assignment, ComparisonTask, Judgment, Project, Prompt, Response


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "overlap_k", "gold_rate", "lease_seconds", "is_active")


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "source", "external_id", "created_at")
    list_filter = ("project", "source")
    search_fields = ("text", "external_id")


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "prompt", "source", "model_name", "created_at")
    list_filter = ("project", "source")
    search_fields = ("text", "external_id")
    raw_id_fields = ("prompt",)


@admin.register(ComparisonTask)
class ComparisonTaskAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "priority", "is_gold", "created_at")
    list_filter = ("project", "is_gold")
    raw_id_fields = ("prompt", "response_a", "response_b")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "annotator", "state", "leased_at", "expires_at")
    list_filter = ("state",)
    raw_id_fields = ("task",)


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "annotator", "choice", "strength", "source", "created_at")
    list_filter = ("choice", "source")
    raw_id_fields = ("task", "assignment")
