"""ComparisonTask.judgment_count, kept by triggers on feedback_judgment.

Triggers rather than code in the services: judgments are also written by imports, by the
demo, by bulk loads and deleted by cascades (an annotator's account), and a count that one
of them forgot would serve a task forever or never again. On SQLite a later migration that
rebuilds feedback_judgment drops these triggers with the old table; it must recreate them.
"""

from django.db import migrations, models

BACKFILL = """
UPDATE feedback_comparisontask SET judgment_count = (
    SELECT COUNT(*) FROM feedback_judgment WHERE feedback_judgment.task_id = feedback_comparisontask.id
)
"""

# Split from the triggers so that 0004 can put this version back when it is reversed.
POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION feedback_judgment_count() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE feedback_comparisontask SET judgment_count = judgment_count + 1 WHERE id = NEW.task_id;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE feedback_comparisontask SET judgment_count = judgment_count - 1 WHERE id = OLD.task_id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""
POSTGRES = (
    POSTGRES_FUNCTION
    + """
CREATE TRIGGER feedback_judgment_count_insert_delete AFTER INSERT OR DELETE ON feedback_judgment
    FOR EACH ROW EXECUTE FUNCTION feedback_judgment_count();
CREATE TRIGGER feedback_judgment_count_move AFTER UPDATE OF task_id ON feedback_judgment
    FOR EACH ROW WHEN (OLD.task_id IS DISTINCT FROM NEW.task_id) EXECUTE FUNCTION feedback_judgment_count();
"""
)
POSTGRES_REVERSE = """
DROP TRIGGER IF EXISTS feedback_judgment_count_insert_delete ON feedback_judgment;
DROP TRIGGER IF EXISTS feedback_judgment_count_move ON feedback_judgment;
DROP FUNCTION IF EXISTS feedback_judgment_count();
"""
SQLITE = [
    """CREATE TRIGGER feedback_judgment_count_insert AFTER INSERT ON feedback_judgment BEGIN
        UPDATE feedback_comparisontask SET judgment_count = judgment_count + 1 WHERE id = NEW.task_id;
    END""",
    """CREATE TRIGGER feedback_judgment_count_delete AFTER DELETE ON feedback_judgment BEGIN
        UPDATE feedback_comparisontask SET judgment_count = judgment_count - 1 WHERE id = OLD.task_id;
    END""",
    """CREATE TRIGGER feedback_judgment_count_move AFTER UPDATE OF task_id ON feedback_judgment
    WHEN OLD.task_id <> NEW.task_id BEGIN
        UPDATE feedback_comparisontask SET judgment_count = judgment_count + 1 WHERE id = NEW.task_id;
        UPDATE feedback_comparisontask SET judgment_count = judgment_count - 1 WHERE id = OLD.task_id;
    END""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS feedback_judgment_count_insert",
    "DROP TRIGGER IF EXISTS feedback_judgment_count_delete",
    "DROP TRIGGER IF EXISTS feedback_judgment_count_move",
]


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    schema_editor.execute(BACKFILL, params=None)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES, params=None)
    else:
        for sql in SQLITE:
            schema_editor.execute(sql, params=None)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE, params=None)
    else:
        for sql in SQLITE_REVERSE:
            schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0002_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="comparisontask",
            name="judgment_count",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddIndex(
            model_name="assignment",
            index=models.Index(
                condition=models.Q(("state", "active")),
                fields=["annotator"],
                name="assignment_active_annotator",
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
