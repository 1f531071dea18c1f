"""The audit log's reading order, (created_at, id): its pages are cut from this index alone.
Plain SQL on flywheel's table, as in 0002 and 0003."""

from django.db import migrations


def create(apps, schema_editor):
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS console_auditlog_order ON flywheel_auditlog (created_at, id)"
    )


def drop(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS console_auditlog_order")


class Migration(migrations.Migration):
    dependencies = [("console", "0003_console_indexes_covering"), ("flywheel", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
