from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from feedback import demo_data
from feedback.models import ComparisonTask, Judgment, JudgmentSource, Project
from flywheel.models import Role, User
from workers import demo, pipeline
from workers.models import ACTIVE_RUN_STATUSES, PipelineRun, RunStatus


class Command(BaseCommand):
    help = "Prepare the demo loop: author labels, the base policy, short settings, and a first run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-run", action="store_true", help="prepare, but start no pipeline run")
        parser.add_argument("--skip-base-policy", action="store_true", help="do not convert SmolLM2 now")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(name=demo_data.PROJECT_NAME).first()
        if project is None:
            raise CommandError("The demo project is missing: run `manage.py seed_demo` first.")
        labelled = self._author_labels(project)
        self.stdout.write(f"Demo author labels: {labelled} new (imported judgments by '{demo.AUTHOR}').")
        if not options["skip_base_policy"]:
            self._base_policy(project)
        cfg = pipeline.pipeline_settings(project=project)
        cfg.min_new_items = 5
        cfg.max_age_hours = 1
        cfg.reward_config = cfg.reward_config or dict(demo.DEMO_REWARD_CONFIG)
        cfg.policy_config = cfg.policy_config or dict(demo.DEMO_POLICY_CONFIG)
        cfg.generation_max_new_tokens = 96
        cfg.candidates_per_prompt = demo.DEMO_CANDIDATES_PER_PROMPT
        cfg.save()
        from curation.services import curation_settings
        from training.services import gate_settings

        # A held-out split big enough for the gate to say something on fifty prompts.
        curation_cfg = curation_settings(project=project)
        curation_cfg.validation_percent = max(curation_cfg.validation_percent, 25)
        curation_cfg.save()

        gate = gate_settings(project=project)
        gate.policy_eval_prompts = min(gate.policy_eval_prompts, 8)
        gate.save()
        if options["no_run"]:
            return
        runs = PipelineRun.objects.filter(project=project)
        if runs.filter(status__in=[*ACTIVE_RUN_STATUSES, RunStatus.SUCCEEDED]).exists():
            self.stdout.write("A pipeline run already exists for the demo; the schedule takes it from here.")
            return
        run = pipeline.pipeline_run_start(project=project, trigger="demo")
        self.stdout.write(
            f"Started pipeline run {run.pk}: snapshot, train the reward model and the policy, gate, "
            "deploy, generate candidates. Watch it in the console or at /api/v1/projects/"
            f"{project.pk}/pipeline-runs."
        )

    def _author_labels(self, project: Project) -> int:
        author, created = User.objects.get_or_create(
            username=demo.AUTHOR, defaults={"role": Role.ANNOTATOR, "first_name": "Demo author"}
        )
        if created:
            author.set_unusable_password()
            author.save()
        made = 0
        prompts = {demo_data.prompt_external_id(p): p for p in demo_data.PROMPTS}
        tasks = ComparisonTask.objects.filter(
            project=project, external_id__startswith="demo-t-"
        ).select_related("prompt")
        with transaction.atomic():
            for task in tasks:
                spec = prompts.get(task.prompt.external_id)
                if spec is None or task.is_gold or spec.key not in demo.AUTHOR_RANKING:
                    continue
                a, b = (int(x) for x in task.external_id.rsplit("-", 1)[1])
                choice = demo.better(spec.key, a, b)
                _, was_created = Judgment.objects.get_or_create(
                    task=task,
                    annotator=author,
                    defaults={"choice": choice, "strength": "clear", "source": JudgmentSource.IMPORT},
                )
                made += int(was_created)
        return made

    def _base_policy(self, project: Project) -> None:
        from training import runs
        from training.services import model_base_deploy

        folder = runs.default_base("policy")
        if not (Path(folder) / "config.json").exists():
            self.stdout.write("Converting SmolLM2-135M-Instruct from its GGUF (once; about a minute)...")
            from training.gguf import convert_smollm2

            convert_smollm2(Path(folder))
        deployment = model_base_deploy(
            project=project, kind="policy", folder=Path(folder), base="SmolLM2-135M-Instruct"
        )
        self.stdout.write(f"Policy serving: {deployment.version} ({deployment.get_action_display()}).")
