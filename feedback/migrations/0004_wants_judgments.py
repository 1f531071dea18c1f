"""ComparisonTask.wants_judgments (judgment_count < the project's overlap_k) and the queue index.

The 0003 triggers now keep it along with the count, and a trigger on feedback_project keeps
it when a project's overlap_k changes, however that happens (service, admin, SQL).
"""

from importlib import import_module

from django.db import migrations, models

BACKFILL = """
UPDATE feedback_comparisontask SET wants_judgments = judgment_count < (
    SELECT overlap_k FROM feedback_project WHERE feedback_project.id = feedback_comparisontask.project_id
)
"""
_K = "(SELECT overlap_k FROM feedback_project WHERE feedback_project.id = feedback_comparisontask.project_id)"
_ADD = f"judgment_count = judgment_count + 1, wants_judgments = judgment_count + 1 < {_K}"
_REMOVE = f"judgment_count = judgment_count - 1, wants_judgments = judgment_count - 1 < {_K}"
_REOPEN = "UPDATE feedback_comparisontask SET wants_judgments = judgment_count < NEW.overlap_k WHERE project_id = NEW.id"

POSTGRES = f"""
CREATE OR REPLACE FUNCTION feedback_judgment_count() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE feedback_comparisontask SET {_ADD} WHERE id = NEW.task_id;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE feedback_comparisontask SET {_REMOVE} WHERE id = OLD.task_id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION feedback_project_overlap() RETURNS trigger AS $$
BEGIN
    {_REOPEN};
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER feedback_project_overlap AFTER UPDATE OF overlap_k ON feedback_project
    FOR EACH ROW WHEN (OLD.overlap_k IS DISTINCT FROM NEW.overlap_k) EXECUTE FUNCTION feedback_project_overlap();
"""
POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS feedback_project_overlap ON feedback_project;
DROP FUNCTION IF EXISTS feedback_project_overlap();
"""

SQLITE_TRIGGERS = [
    "feedback_judgment_count_insert",
    "feedback_judgment_count_delete",
    "feedback_judgment_count_move",
    "feedback_project_overlap",
]
SQLITE = [
    f"""CREATE TRIGGER feedback_judgment_count_insert AFTER INSERT ON feedback_judgment BEGIN
        UPDATE feedback_comparisontask SET {_ADD} WHERE id = NEW.task_id;
    END""",
    f"""CREATE TRIGGER feedback_judgment_count_delete AFTER DELETE ON feedback_judgment BEGIN
        UPDATE feedback_comparisontask SET {_REMOVE} WHERE id = OLD.task_id;
    END""",
    f"""CREATE TRIGGER feedback_judgment_count_move AFTER UPDATE OF task_id ON feedback_judgment
    WHEN OLD.task_id <> NEW.task_id BEGIN
        UPDATE feedback_comparisontask SET {_ADD} WHERE id = NEW.task_id;
        UPDATE feedback_comparisontask SET {_REMOVE} WHERE id = OLD.task_id;
    END""",
    f"""CREATE TRIGGER feedback_project_overlap AFTER UPDATE OF overlap_k ON feedback_project
    WHEN OLD.overlap_k <> NEW.overlap_k BEGIN
        {_REOPEN};
    END""",
]


def _migration_0003():  # type: ignore[no-untyped-def]
    return import_module("feedback.migrations.0003_judgment_count")


def sqlite_drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    # SQLite rebuilds feedback_comparisontask to add the column, and refuses to while triggers
    # name it. Any later migration that rebuilds it or feedback_judgment must do the same.
    if schema_editor.connection.vendor != "postgresql":
        for name in SQLITE_TRIGGERS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)


def sqlite_restore_0003(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        for sql in _migration_0003().SQLITE:
            schema_editor.execute(sql, params=None)


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    schema_editor.execute(BACKFILL, params=None)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES, params=None)
        return
    for sql in SQLITE:
        schema_editor.execute(sql, params=None)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE, params=None)
        schema_editor.execute(_migration_0003().POSTGRES_FUNCTION, params=None)
        return
    for name in SQLITE_TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0003_judgment_count"),
    ]

    operations = [
        migrations.RunPython(sqlite_drop, sqlite_restore_0003),
        migrations.AddField(
            model_name="comparisontask",
            name="wants_judgments",
            field=models.BooleanField(default=True, editable=False),
        ),
        migrations.AddIndex(
            model_name="comparisontask",
            index=models.Index(
                condition=models.Q(("is_gold", False), ("wants_judgments", True)),
                fields=["project", "-priority", "id"],
                name="task_queue",
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
