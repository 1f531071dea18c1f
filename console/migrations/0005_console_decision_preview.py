"""The threshold preview's index, from bench/console.py at 100,000 items: the preview joins
every stored measurement of a project to its decision for the status, override, quality score
and cluster. (project_id, id) INCLUDE those four lets PostgreSQL read the decisions' side from
the index alone instead of scanning the whole decision table, whose rows carry the rule JSON
and the signatures. PostgreSQL only (INCLUDE); plain SQL on curation's table, as in 0002."""

from django.db import migrations

CREATE = (
    "CREATE INDEX IF NOT EXISTS console_decision_preview ON curation_curationdecision (project_id, id) "
    "INCLUDE (status, override_status, quality_score, cluster_representative_id)"
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS console_decision_preview")


class Migration(migrations.Migration):
    dependencies = [("console", "0004_console_audit_order"), ("curation", "0003_measurement")]

    operations = [migrations.RunPython(create, drop)]
