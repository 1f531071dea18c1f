"""More indexes for the console, from bench/console.py at 100,000 items.

- console_decision_project_order (project_id, id): the queue with no status filter ("all")
  pages through the ids of a project in order, index-only.
- console_decision_cluster_members (project_id, cluster_representative_id, id) replaces
  (project_id, cluster_representative_id): "is a duplicate" compares the representative with
  the row's own id, so with id in the index the cluster list and the duplicate count never
  touch the table.
- console_decision_overrides (project_id) WHERE override_status IN ('kept', 'rejected'): the
  classifier's label count (curation.quality.classifier_status) on every item page.
- console_decision_score (project_id, quality_score): the score-range filter.
"""

from django.db import migrations

CREATE = [
    "CREATE INDEX IF NOT EXISTS console_decision_project_order ON curation_curationdecision (project_id, id)",
    "CREATE INDEX IF NOT EXISTS console_decision_cluster_members "
    "ON curation_curationdecision (project_id, cluster_representative_id, id)",
    "CREATE INDEX IF NOT EXISTS console_decision_overrides ON curation_curationdecision (project_id) "
    "WHERE override_status IN ('kept', 'rejected')",
    "CREATE INDEX IF NOT EXISTS console_decision_score ON curation_curationdecision (project_id, quality_score)",
    "DROP INDEX IF EXISTS console_decision_cluster",
]
DROP = [
    "DROP INDEX IF EXISTS console_decision_project_order",
    "DROP INDEX IF EXISTS console_decision_cluster_members",
    "DROP INDEX IF EXISTS console_decision_overrides",
    "DROP INDEX IF EXISTS console_decision_score",
    "CREATE INDEX IF NOT EXISTS console_decision_cluster "
    "ON curation_curationdecision (project_id, cluster_representative_id)",
]


def create(apps, schema_editor):
    for sql in CREATE:
        schema_editor.execute(sql)


def drop(apps, schema_editor):
    for sql in DROP:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("console", "0002_console_indexes")]

    operations = [migrations.RunPython(create, drop)]
