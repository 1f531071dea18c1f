"""ComparisonTask.training_weight: how much a pair counts in reward training (1 unless an
importance-sampling policy drew it).

SQLite rebuilds feedback_comparisontask to add a column and refuses to while triggers name it
(see 0004), so the triggers in force since 0005 are dropped around the change and put back.
"""

from importlib import import_module

from django.db import migrations, models

_0004 = import_module("feedback.migrations.0004_wants_judgments")
_0005 = import_module("feedback.migrations.0005_wants_judgments_without_project")


def sqlite_restore(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        _, judgment_triggers = _0005._judgment_count_sql(_0005.SAFE_K)
        for sql in [*judgment_triggers, _0004.SQLITE[3]]:
            schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0005_wants_judgments_without_project"),
    ]

    operations = [
        migrations.RunPython(_0004.sqlite_drop, sqlite_restore),
        migrations.AddField(
            model_name="comparisontask",
            name="training_weight",
            field=models.FloatField(default=1.0),
        ),
        migrations.RunPython(sqlite_restore, _0004.sqlite_drop),
    ]
