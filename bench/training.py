"""Reward-model training benchmark: Flywheel's pipeline against a bare TRL RewardTrainer script.

    .venv/bin/python bench/training.py                       # all-MiniLM-L6-v2, 480 pairs, 3 repeats
    .venv/bin/python bench/training.py --tiny --repeats 1    # a tiny BERT, for a quick check
    .venv/bin/python bench/training.py --write-docs          # then update docs/benchmarks.md

Both sides train the same base on the same export with the same epochs, batch size, learning
rate, seed and max length:

- **Flywheel**: what the pipeline's snapshot and train steps do. `snapshot_create` exports the
  curated preferences, `model_version_create` registers the version, `runs.version_train`
  trains it (`train_reward`), evaluates it on the held-out split (and the deployed model on the
  same pairs, when there is one), records the artifact's checksum and runs the gate (which
  deploys on a pass, after checking the checksum again).
- **bare TRL**: the minimal script a user would write (`bare_trl_train` below): tokenizer and
  `AutoModelForSequenceClassification(num_labels=1)`, `Dataset.from_json` on the same
  `preferences_train.jsonl`, TRL's own tokenisation, `RewardTrainer.train()`, `save_model`.

Each run is a fresh child process (`--child`), ours and bare interleaved so that the load of a
shared machine falls on both alike. Imports are not timed on either side (a worker has them
loaded). The parent seeds a project with realistic preference data first (not timed: it is the
annotation that precedes training) in a dedicated database: SQLite in the temp folder by
default, or the PostgreSQL database of `--database-url`, dropped and created afresh.

Also measured: `RewardModel.score` throughput with batch sizes 1 (one response per call), 8, 32
and 64 on the model the first Flywheel run trained.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, sys.path starts at bench/, where this file would shadow the `training` package.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Training (bench/training.py)"
PROJECT_NAME = "Training benchmark"
USER_PREFIX = "bench-trainer-"
SCORE_BATCH_SIZES = (1, 8, 32, 64)
SCORE_PROMPTS = 4
SCORE_RESPONSES_PER_PROMPT = 64


# --- Command line ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--pairs", type=int, default=480, help="comparison tasks to seed (about 10%% go to validation)"
    )
    p.add_argument("--repeats", type=int, default=3, help="runs of each side; the table shows medians")
    p.add_argument("--tiny", action="store_true", help="a tiny 2-layer BERT instead of all-MiniLM-L6-v2")
    p.add_argument(
        "--base", type=Path, default=None, help="a local encoder folder (default: all-MiniLM-L6-v2)"
    )
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=None, help="default: 3e-5, or 1e-3 with --tiny")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", ""),
        help="a dedicated PostgreSQL database, dropped and recreated; default: SQLite in the temp folder",
    )
    p.add_argument("--skip-scoring", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (exports, models)")
    p.add_argument("--write-docs", action="store_true", help=f"rewrite '{SECTION}' in docs/benchmarks.md")
    p.add_argument("--save-results", type=Path, help="also write the raw measurements to this JSON file")
    p.add_argument(
        "--from-results", type=Path, help="print (and with --write-docs, write) the report of a saved run"
    )
    p.add_argument("--child", choices=("ours", "bare", "score"), help=argparse.SUPPRESS)
    p.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.child and (args.pairs < 20 or args.repeats < 1):
        p.error("--pairs must be at least 20 and --repeats at least 1")
    if args.lr is None:
        # A randomly initialised tiny model needs a large step to learn anything in one epoch.
        args.lr = 1e-3 if args.tiny else 3e-5
    return args


@dataclass(frozen=True)
class HyperParams:
    epochs: float
    batch_size: int
    lr: float
    seed: int
    max_length: int


# --- Data: realistic preference pairs --------------------------------------------------------

SUBJECTS = (
    "a sourdough starter", "a Python virtual environment", "a small vegetable garden", "a monthly budget",
    "a home Wi-Fi network", "a job interview", "a 5 km running plan", "a houseplant that keeps drooping",
    "a slow laptop", "a team retrospective", "a bicycle chain", "a cover letter", "a PostgreSQL backup",
    "a toddler's bedtime routine", "a noisy dishwasher", "a first aquarium", "a conference talk",
    "a git merge conflict", "a leaking tap", "a weekly meal plan", "a language learning habit",
    "a cast iron pan", "a gap in my CV", "a cron job that never runs", "a compost heap",
    "a difficult conversation with my manager", "a long-haul flight", "a spreadsheet with duplicate rows",
    "a squeaky door", "a new puppy", "an emergency savings fund", "a flaky unit test", "a wedding speech",
    "a home office setup", "a bread machine", "an SSH key", "a camping trip in autumn", "a reading habit",
    "a mouldy bathroom ceiling", "a Docker image that is too large",
)  # fmt: skip
QUESTIONS = (
    "How do I get started with {s}?",
    "What is the most common mistake people make with {s}?",
    "Can you give me a simple plan for {s}?",
    "What should I check first when dealing with {s}?",
    "I am a complete beginner. How should I approach {s}?",
    "What is a good weekly routine for {s}?",
    "How much time should I expect to spend on {s}?",
    "What do I actually need for {s}, and what can I skip?",
    "How do I know whether I am handling {s} well?",
    "Any practical tips for {s}?",
    "What would an expert do differently with {s}?",
    "How can I avoid wasting money on {s}?",
)
OPENINGS = ("Here is a simple approach.", "Good question.", "A few concrete steps help most.", "")
HELPFUL = (
    "Start by writing down in one sentence what you want from {s}, so every later choice has a test.",
    "Spend the first week on the basics only: fifteen minutes a day is enough to build the habit.",
    "Check the simplest cause first: with {s} most problems come from one small step that was skipped.",
    "Keep a short log of the date, what you changed and what happened, so you can see what actually works.",
    "Change one thing at a time and give it three or four days before you judge the result.",
    "If you get stuck, compare your steps with the official guide line by line rather than guessing.",
    "Set a fixed budget up front and buy extra tools only once you have hit a real limit.",
    "Put a reminder in your calendar for the same time each week to review progress and adjust the plan.",
    "Split the work into prepare, do and review, and finish each part before you start the next one.",
    "Measure before and after, even roughly, because a number tells you more than a feeling does.",
    "Ask someone who has done {s} recently to look over your plan; ten minutes of their time saves hours.",
    "Expect the first attempt to be imperfect and plan a second pass a week later to fix what you learned.",
)
VAGUE = (
    "It really depends on your situation, so it is hard to say.",
    "There are lots of opinions about {s} online and they all disagree.",
    "Honestly, people usually figure {s} out on their own eventually.",
    "You could try a few things and see what happens.",
    "I would not worry about it too much.",
    "Some people find it easy and some people find it hard.",
    "Maybe search for it, there is probably a video somewhere.",
    "It is complicated and there is no single right answer.",
    "Everyone does it differently, so just do whatever feels right.",
    "I am not really sure, but it probably works out in the end.",
    "Things like {s} can go either way, it is difficult to predict.",
    "Lots of people have asked this before and the answers vary a great deal.",
)


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str


def _fill(templates: tuple[str, ...], count: int, subject: str, rng: random.Random) -> str:
    return " ".join(t.format(s=subject) for t in rng.sample(templates, count))


def preference_pairs(n: int, seed: int) -> list[Pair]:
    """`n` pairs on distinct prompts: the preferred reply gives concrete steps, the other stays vague.

    The vague reply has more, shorter sentences, so that neither side is longer on average: a
    reward model that learned length alone would not pass the gate.
    """
    rng = random.Random(seed)
    prompts = [q.format(s=s) for s in SUBJECTS for q in QUESTIONS]
    if n > len(prompts):
        raise ValueError(f"at most {len(prompts)} distinct prompts; ask for fewer --pairs")
    rng.shuffle(prompts)
    pairs = []
    for prompt in prompts[:n]:
        subject = next(s for s in SUBJECTS if s in prompt)
        chosen = f"{rng.choice(OPENINGS)} {_fill(HELPFUL, rng.randint(2, 4), subject, rng)}".strip()
        rejected = _fill(VAGUE, rng.randint(3, 7), subject, rng)
        pairs.append(Pair(prompt=prompt, chosen=chosen, rejected=rejected))
    return pairs


# --- Database and seed data (parent) ---------------------------------------------------------


def prepare_database(url: str) -> None:
    """Drop and recreate the dedicated PostgreSQL database: each run starts from an empty registry.

    Snapshots are immutable (a trigger refuses changes) and protected by the versions trained on
    them, so an earlier run's rows cannot simply be deleted.
    """
    if not url:
        return
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if not name.startswith("flywheel_") or "bench" not in name:
        raise SystemExit(f"--database-url must name a dedicated database (flywheel_*bench*), not {name!r}")
    host, port = parsed.hostname or "127.0.0.1", str(parsed.port or 5432)
    conn = ["-h", host, "-p", port, "-U", parsed.username or "postgres"]
    subprocess.run(["dropdb", *conn, "--if-exists", name], check=True)
    subprocess.run(["createdb", *conn, name], check=True)


def child_env(args: argparse.Namespace, work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "flywheel.settings",
            "FLYWHEEL_DATA_DIR": str(work / "data"),
            # A training worker runs with DEBUG off; DEBUG on would also record every query.
            "DEBUG": "0",
            "HF_HUB_OFFLINE": "1",
            # The bare script's Dataset.from_json caches Arrow files; keep them in the temp folder.
            "HF_DATASETS_CACHE": str(work / "hf-datasets"),
            "PYTHONPATH": str(ROOT),
        }
    )
    # One thread on this shared box, as the docs recommend; an explicit setting wins.
    env.setdefault("OMP_NUM_THREADS", "1")
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    else:
        env.pop("DATABASE_URL", None)
    # Nothing here enqueues work; the file-system broker keeps the bench off a shared Redis.
    env.pop("REDIS_URL", None)
    return env


def setup_django(env: dict[str, str]) -> None:
    """The parent seeds and exports with the same settings as the children."""
    os.environ.update(env)
    for key in ("DATABASE_URL", "REDIS_URL"):
        if key not in env:
            os.environ.pop(key, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed_project(pairs: list[Pair], seed: int) -> int:
    """A curated project whose every pair three annotators judged: what a snapshot exports.

    Curation itself is not what is measured (bench/dedup.py is), so the decisions are written as
    kept directly, with the same exact hashes the pipeline would give them.
    """
    from django.db import transaction

    from curation.models import CurationDecision, ItemKind, Status
    from feedback.models import (
        ComparisonTask,
        Judgment,
        Project,
        Prompt,
        PromptSource,
        Response,
        ResponseSource,
    )
    from flywheel.models import Role, User

    rng = random.Random(seed)
    with transaction.atomic():
        project = Project.objects.create(name=PROJECT_NAME)
        annotators = User.objects.bulk_create(
            User(username=f"{USER_PREFIX}{name}", role=Role.ANNOTATOR, trust=trust)
            for name, trust in (("alice", 0.9), ("bob", 0.85), ("erin", 0.8))
        )
        prompts = Prompt.objects.bulk_create(
            Prompt(project=project, text=pair.prompt, source=PromptSource.SEED) for pair in pairs
        )
        chosen_first = [rng.random() < 0.5 for _ in pairs]
        responses = Response.objects.bulk_create(
            Response(project=project, prompt=prompt, text=text, source=ResponseSource.SEED)
            for prompt, pair, first in zip(prompts, pairs, chosen_first, strict=True)
            for text in ((pair.chosen, pair.rejected) if first else (pair.rejected, pair.chosen))
        )
        tasks = ComparisonTask.objects.bulk_create(
            ComparisonTask(
                project=project, prompt=prompt, response_a=responses[2 * i], response_b=responses[2 * i + 1]
            )
            for i, prompt in enumerate(prompts)
        )
        judgments = []
        for task, first in zip(tasks, chosen_first, strict=True):
            good, bad = ("a", "b") if first else ("b", "a")
            # Most pairs are clear to all three; some split 2-1, which the export keeps (agreement
            # above 0.6) with a smaller margin.
            unanimous = rng.random() < 0.7
            for index, annotator in enumerate(annotators):
                dissent = not unanimous and index == rng.randrange(3)
                judgments.append(
                    Judgment(
                        task=task,
                        annotator=annotator,
                        choice=bad if dissent else good,
                        strength="clear" if unanimous else "slight",
                    )
                )
        Judgment.objects.bulk_create(judgments)

        def exact(text: str) -> str:
            return hashlib.sha256(text.encode()).hexdigest()

        CurationDecision.objects.bulk_create(
            [
                *(
                    CurationDecision(
                        project=project,
                        kind=ItemKind.PROMPT,
                        prompt=p,
                        status=Status.KEPT,
                        pipeline_status=Status.KEPT,
                        exact_hash=exact(p.text),
                    )
                    for p in prompts
                ),
                *(
                    CurationDecision(
                        project=project,
                        kind=ItemKind.RESPONSE,
                        response=r,
                        status=Status.KEPT,
                        pipeline_status=Status.KEPT,
                        exact_hash=exact(r.text),
                    )
                    for r in responses
                ),
            ]
        )
    return int(project.pk)


def export_once(project_id: int) -> Path:
    """The export the bare script reads: the same rows every Flywheel run exports again."""
    from curation.snapshots import snapshot_create
    from feedback.models import Project

    snapshot = snapshot_create(
        project=Project.objects.get(pk=project_id), actor=None, note="bench: bare TRL data"
    )
    return Path(snapshot.directory)


# --- Timing helpers (children) ---------------------------------------------------------------


@dataclass
class Span:
    wall: float = 0.0
    cpu: float = 0.0
    calls: int = 0


class Timings:
    """Named wall-clock and CPU spans; a name entered several times adds up."""

    def __init__(self) -> None:
        self.spans: dict[str, Span] = {}

    @contextmanager
    def span(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            span = self.spans.setdefault(name, Span())
            span.wall += time.perf_counter() - wall
            span.cpu += time.process_time() - cpu
            span.calls += 1

    def wrap(self, owner: Any, attribute: str, name: str, *, unless: str = "") -> None:
        """Time every call of `owner.attribute` (a module function or a method) under `name`,
        except calls given a true `unless` keyword argument."""
        original = getattr(owner, attribute)
        timings = self

        def timed(*a: Any, **kw: Any) -> Any:
            if unless and kw.get(unless):
                return original(*a, **kw)
            with timings.span(name):
                return original(*a, **kw)

        setattr(owner, attribute, timed)

    def as_json(self) -> dict[str, dict[str, float]]:
        return {name: asdict(span) for name, span in self.spans.items()}


def _time_trainer(timings: Timings) -> None:
    # Both sides go through the same RewardTrainer (which inherits train and save_model from
    # transformers' Trainer), so the same wrappers time the same code on each side.
    from trl import RewardTrainer

    timings.wrap(RewardTrainer, "train", "train_loop")
    timings.wrap(RewardTrainer, "_save_checkpoint", "checkpoint")
    # A checkpoint saves the model too (_internal_call=True): that belongs to the loop, not here.
    timings.wrap(RewardTrainer, "save_model", "save_model", unless="_internal_call")


def _final_loss(log_history: list[dict[str, Any]]) -> float | None:
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    return float(losses[-1]) if losses else None


# --- Child: the Flywheel pipeline ------------------------------------------------------------


def child_ours(spec: dict[str, Any]) -> dict[str, Any]:
    import django

    django.setup()
    # Load the heavy modules before timing, as a warm training worker has them.
    import training.evaluate
    import training.loop
    import training.reward
    import training.serving
    from curation.snapshots import snapshot_create
    from feedback.models import Project
    from training import runs, services
    from training.models import ModelKind, ModelVersion

    hp = HyperParams(**spec["hp"])
    timings = Timings()
    _time_trainer(timings)
    timings.wrap(training.reward, "train_reward", "train_reward")
    timings.wrap(training.loop, "write_metadata", "train_finish")
    timings.wrap(training.loop, "remove_checkpoints", "train_finish")
    timings.wrap(training.evaluate, "evaluate_reward", "evaluate")
    timings.wrap(services, "version_progress", "progress_writes")
    timings.wrap(services, "version_evaluated", "register")
    timings.wrap(services, "model_promote_if_better", "gate")
    timings.wrap(services, "folder_digest", "checksum")

    project = Project.objects.get(pk=spec["project_id"])
    with timings.span("end_to_end"):
        with timings.span("export"):
            snapshot = snapshot_create(project=project, actor=None, note="bench: Flywheel run")
        with timings.span("version_create"):
            version = services.model_version_create(
                project=project,
                kind=ModelKind.REWARD,
                base=spec["base"],
                snapshot=snapshot,
                config={
                    "seed": hp.seed,
                    "epochs": hp.epochs,
                    "batch_size": hp.batch_size,
                    "lr": hp.lr,
                    "max_length": hp.max_length,
                },
            )
        with timings.span("version_train"):
            decision = runs.version_train(version_id=version.pk)
    version = ModelVersion.objects.get(pk=version.pk)
    train = version.metrics.get("train", {})
    return {
        "timings": timings.as_json(),
        "status": version.status,
        "error": version.error[-2000:],
        "passed": decision.passed if decision else None,
        "rule": decision.rule if decision else None,
        "against": version.metrics.get("against_number"),
        "accuracy": version.metrics.get("accuracy"),
        "deployed_accuracy": (version.metrics.get("deployed") or {}).get("accuracy"),
        "length_baseline_accuracy": version.metrics.get("length_baseline_accuracy"),
        "validation_pairs": version.metrics.get("n"),
        "train_pairs": snapshot.counts.get("preferences_train"),
        "steps": train.get("steps"),
        "final_loss": train.get("final_loss"),
        "artifact": version.artifact_path,
        "snapshot": snapshot.directory,
    }


# --- Child: the bare TRL script --------------------------------------------------------------


def bare_trl_train(data_file: Path, base: Path, out: Path, hp: HyperParams) -> Any:
    """What a user writes with TRL alone. Returns the trainer."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed
    from trl import RewardConfig, RewardTrainer

    tokenizer = AutoTokenizer.from_pretrained(base)
    # BERT has no EOS, which TRL appends to every reply; [SEP] is the natural stand-in.
    tokenizer.eos_token = tokenizer.sep_token
    set_seed(hp.seed)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    # prompt / chosen / rejected (and margin, which TRL subtracts in the loss) straight from the export.
    dataset = Dataset.from_json(str(data_file))
    args = RewardConfig(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=hp.batch_size,
        num_train_epochs=hp.epochs,
        learning_rate=hp.lr,
        seed=hp.seed,
        max_length=hp.max_length,
        # TRL defaults to bf16, which this CPU refuses, and to activation checkpointing, which
        # Flywheel turns off; left on, the bare run would recompute every forward pass.
        bf16=False,
        activation_checkpointing=False,
        report_to="none",
    )
    trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    trainer.save_model(str(out))
    return trainer


def child_bare(spec: dict[str, Any]) -> dict[str, Any]:
    # Imported before timing, as on the Flywheel side.
    import datasets
    import torch
    import transformers
    import trl  # noqa: F401

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    # Same thread count as Flywheel's configure_threads (OMP_NUM_THREADS is set for both).
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    hp = HyperParams(**spec["hp"])
    timings = Timings()
    _time_trainer(timings)
    out = Path(spec["out"])
    with timings.span("end_to_end"):
        trainer = bare_trl_train(Path(spec["data_file"]), Path(spec["base"]), out, hp)
    return {
        "timings": timings.as_json(),
        "train_pairs": len(trainer.train_dataset),
        "steps": trainer.state.global_step,
        "final_loss": _final_loss(trainer.state.log_history),
    }


# --- Child: scoring throughput ---------------------------------------------------------------


def child_score(spec: dict[str, Any]) -> dict[str, Any]:
    from training.serving import RewardModel

    model = RewardModel.load(Path(spec["model"]))
    workload: list[tuple[str, list[str]]] = spec["workload"]
    total = sum(len(responses) for _, responses in workload)
    model.score(workload[0][0], workload[0][1][:8], batch_size=8)  # first call pays one-off setup
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for _ in range(spec["repeats"]):
        for batch_size in SCORE_BATCH_SIZES:
            started, started_cpu = time.perf_counter(), time.process_time()
            for prompt, responses in workload:
                if batch_size == 1:
                    # One response per call: a client that scores as replies arrive.
                    for response in responses:
                        model.score(prompt, [response], batch_size=1)
                else:
                    model.score(prompt, responses, batch_size=batch_size)
            wall.setdefault(str(batch_size), []).append(total / (time.perf_counter() - started))
            cpu.setdefault(str(batch_size), []).append(total / (time.process_time() - started_cpu))
    return {"responses": total, "responses_per_second": wall, "responses_per_cpu_second": cpu}


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ours": child_ours,
    "bare": child_bare,
    "score": child_score,
}


def run_child(kind: str, spec: dict[str, Any], env: dict[str, str], work: Path) -> dict[str, Any]:
    spec_file = work / f"spec-{kind}-{time.monotonic_ns()}.json"
    result_file = spec_file.with_suffix(".result.json")
    log_file = spec_file.with_suffix(".log")
    spec_file.write_text(json.dumps({**spec, "result": str(result_file)}))
    # The children's warnings and TRL's progress bars go to a log, so the table stays readable.
    with log_file.open("w") as log:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--spec", str(spec_file)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if done.returncode != 0:
        tail = log_file.read_text(errors="replace")[-4000:]
        raise SystemExit(f"the {kind} child failed (exit {done.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(result_file.read_text())
    return result


# --- Report ----------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _wall(run: dict[str, Any], name: str) -> float:
    span = run["timings"].get(name)
    return float(span["wall"]) if span else 0.0


def _cpu(run: dict[str, Any], name: str) -> float:
    span = run["timings"].get(name)
    return float(span["cpu"]) if span else 0.0


def _overhead(ours: float, bare: float) -> str:
    return f"{(ours - bare) / bare:+.1%}" if bare > 0 else "n/a"


def phase_rows(run: dict[str, Any], *, ours: bool) -> dict[str, tuple[float, float]]:
    """(wall, cpu) seconds per phase of one run, the phases adding up to the end-to-end time."""

    def both(name: str) -> tuple[float, float]:
        return _wall(run, name), _cpu(run, name)

    def minus(a: tuple[float, float], *bs: tuple[float, float]) -> tuple[float, float]:
        return a[0] - sum(b[0] for b in bs), a[1] - sum(b[1] for b in bs)

    loop, save = both("train_loop"), both("save_model")
    if not ours:
        end = both("end_to_end")
        return {
            "setup": minus(end, loop, save),
            "train_loop": loop,
            "checkpoint": both("checkpoint"),
            "save_model": save,
            "end_to_end": end,
        }
    train = both("train_reward")
    evaluate, register, gate = both("evaluate"), both("register"), both("gate")
    version_train = both("version_train")
    return {
        "export": both("export"),
        "version_create": both("version_create"),
        "setup": minus(train, loop, save, both("train_finish")),
        "train_loop": loop,
        "checkpoint": both("checkpoint"),
        "save_model": save,
        "train_finish": both("train_finish"),
        "evaluate": evaluate,
        "register": register,
        "gate": gate,
        "other": minus(version_train, train, evaluate, register, gate),
        "training_call": train,
        "end_to_end": both("end_to_end"),
    }


PHASE_LABELS = {
    "export": "export (`snapshot_create`)",
    "version_create": "version row (`model_version_create`)",
    "setup": "read data, load tokenizer and model, tokenise, build trainer",
    "train_loop": "train loop (`Trainer.train`)",
    "checkpoint": "of which resume checkpoints (`_save_checkpoint`)",
    "save_model": "save model (`save_model`)",
    "train_finish": "`flywheel.json`, checkpoint clean-up",
    "evaluate": "evaluation on the held-out pairs (`evaluate_reward`)",
    "register": "registration (`version_evaluated`: folder checksum, metrics)",
    "gate": "gate (`model_promote_if_better`; on a pass also checksum check + deploy)",
    "other": "claim, progress rows, version reloads",
}


def build_report(
    args: argparse.Namespace,
    ours: list[dict[str, Any]],
    bare: list[dict[str, Any]],
    scoring: dict[str, Any] | None,
    context: dict[str, Any],
) -> str:
    ours_phases = [phase_rows(r, ours=True) for r in ours]
    bare_phases = [phase_rows(r, ours=False) for r in bare]

    def med(phases: list[dict[str, tuple[float, float]]], name: str, index: int = 0) -> float:
        return _median([p[name][index] for p in phases if name in p])

    pairs = ours[0]["train_pairs"]
    epochs = args.epochs
    lines: list[str] = []
    add = lines.append

    loop_ours, loop_bare = med(ours_phases, "train_loop"), med(bare_phases, "train_loop")
    call_ours, call_bare = med(ours_phases, "training_call"), med(bare_phases, "end_to_end")
    e2e_ours = med(ours_phases, "end_to_end")
    add(f"Medians of {args.repeats} run(s) each; wall-clock seconds (CPU seconds in brackets).")
    add("")
    add("| measurement | Flywheel | bare TRL | our overhead |")
    add("| --- | ---: | ---: | ---: |")
    add(
        f"| train loop only (`Trainer.train`), pairs/s | {pairs * epochs / loop_ours:.2f} "
        f"| {bare[0]['train_pairs'] * epochs / loop_bare:.2f} | {_overhead(loop_ours, loop_bare)} |"
    )
    for label, o, b, key_o, key_b in (
        ("train loop only (`Trainer.train`)", loop_ours, loop_bare, "train_loop", "train_loop"),
        ("training only: load, tokenise, train, save", call_ours, call_bare, "training_call", "end_to_end"),
        (
            "end to end: ours adds export, version row, evaluation, registration, gate",
            e2e_ours,
            call_bare,
            "end_to_end",
            "end_to_end",
        ),
    ):
        cpu_o, cpu_b = med(ours_phases, key_o, 1), med(bare_phases, key_b, 1)
        add(
            f"| {label}, s | {o:.1f} ({cpu_o:.1f}) | {b:.1f} ({cpu_b:.1f}) "
            f"| {_overhead(o, b)} ({_overhead(cpu_o, cpu_b)} CPU) |"
        )
    e2e_cpu_o, e2e_cpu_b = med(ours_phases, "end_to_end", 1), med(bare_phases, "end_to_end", 1)
    cpu_overhead = (e2e_cpu_o - e2e_cpu_b) / e2e_cpu_b if e2e_cpu_b > 0 else float("nan")
    add("")
    add(
        f"Target, our end-to-end overhead at most 10% of the bare TRL time: "
        f"{'met' if cpu_overhead <= 0.10 else 'missed'} in CPU time ({cpu_overhead:+.1%}); "
        f"wall clock {_overhead(e2e_ours, call_bare)}."
    )
    add("")
    add("Where the time goes (medians, wall seconds; CPU seconds in brackets):")
    add("")
    add("| phase | Flywheel | bare TRL |")
    add("| --- | ---: | ---: |")
    for name, label in PHASE_LABELS.items():
        ours_cell = f"{med(ours_phases, name):.2f} ({med(ours_phases, name, 1):.2f})"
        bare_cell = (
            f"{med(bare_phases, name):.2f} ({med(bare_phases, name, 1):.2f})"
            if name in bare_phases[0]
            else "–"
        )
        add(f"| {label} | {ours_cell} | {bare_cell} |")
    add(
        f"| **total** | **{e2e_ours:.2f}** ({med(ours_phases, 'end_to_end', 1):.2f}) "
        f"| **{call_bare:.2f}** ({med(bare_phases, 'end_to_end', 1):.2f}) |"
    )
    add("")
    add("Each run:")
    add("")
    add(
        "| run | Flywheel e2e s | training s | loop s | eval s | gate | val. acc. (deployed) | final loss "
        "| bare TRL s | loop s | final loss |"
    )
    add("| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |")

    def cell(phases: dict[str, tuple[float, float]], name: str) -> str:
        return f"{phases[name][0]:.1f} ({phases[name][1]:.1f})"

    for index, (run_o, run_b, op, bp) in enumerate(
        zip(ours, bare, ours_phases, bare_phases, strict=True), start=1
    ):
        deployed = (
            f" ({run_o['deployed_accuracy']:.3f})" if run_o.get("deployed_accuracy") is not None else ""
        )
        verdict = "no run" if run_o["passed"] is None else ("pass" if run_o["passed"] else "fail")
        against = f" vs v{run_o['against']}" if run_o.get("against") else " (first model)"
        add(
            f"| {index} | {cell(op, 'end_to_end')} | {cell(op, 'training_call')} "
            f"| {cell(op, 'train_loop')} | {cell(op, 'evaluate')} | {verdict}{against} "
            f"| {_fmt(run_o['accuracy'])}{deployed} "
            f"| {_fmt(run_o['final_loss'])} | {cell(bp, 'end_to_end')} | {cell(bp, 'train_loop')} "
            f"| {_fmt(run_b['final_loss'])} |"
        )
    if len(ours) > 1:

        def spread(phases: list[dict[str, tuple[float, float]]], index: int) -> str:
            values = [p["train_loop"][index] for p in phases]
            return f"{min(values):.1f} to {max(values):.1f}"

        add("")
        add(
            f"Spread of the train loop across runs: Flywheel {spread(ours_phases, 0)} s wall, "
            f"{spread(ours_phases, 1)} s CPU; bare TRL {spread(bare_phases, 0)} s wall, "
            f"{spread(bare_phases, 1)} s CPU. Where the ranges overlap, the loops' difference is noise."
        )
    if scoring is not None:
        add("")
        add(
            f"`RewardModel.score` throughput ({scoring['responses']} responses: {SCORE_PROMPTS} prompts × "
            f"{SCORE_RESPONSES_PER_PROMPT} candidates; median of {args.repeats}):"
        )
        add("")
        add("| batch size | responses/s (wall) | responses per CPU second |")
        add("| ---: | ---: | ---: |")
        for size in SCORE_BATCH_SIZES:
            label = "1 (one response per call)" if size == 1 else str(size)
            add(
                f"| {label} | {_median(scoring['responses_per_second'][str(size)]):.1f} "
                f"| {_median(scoring['responses_per_cpu_second'][str(size)]):.1f} |"
            )
    add("")
    add(
        f"Data: {context['train_pairs']} training and {context['validation_pairs']} validation pairs; "
        f"{ours[0]['steps']} optimizer steps per run (bare TRL: {bare[0]['steps']}). Length baseline on the "
        f"validation split: {_fmt(ours[0]['length_baseline_accuracy'])}."
    )
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "–"


def machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{name} {version(name)}" for name in ("torch", "transformers", "trl", "datasets"))


def command_line(args: argparse.Namespace) -> str:
    parts = [".venv/bin/python bench/training.py"]
    if args.tiny:
        parts.append("--tiny")
    defaults = parse_args([])
    for option in ("pairs", "repeats", "epochs", "batch_size", "seed", "max_length"):
        if getattr(args, option) != getattr(defaults, option):
            parts.append(f"--{option.replace('_', '-')} {getattr(args, option)}")
    if args.lr != (1e-3 if args.tiny else 3e-5):
        parts.append(f"--lr {args.lr}")
    if args.database_url:
        parts.append(f"--database-url {args.database_url}")
    if args.skip_scoring:
        parts.append("--skip-scoring")
    parts.append("--write-docs")
    return "OMP_NUM_THREADS=1 " + " ".join(parts)


def docs_section(args: argparse.Namespace, report: str, context: dict[str, Any]) -> str:
    base = (
        "a tiny 2-layer BERT (`--tiny`)"
        if args.tiny
        else "all-MiniLM-L6-v2 (22M parameters, fully fine-tuned)"
    )
    database = "PostgreSQL (`--database-url`)" if args.database_url else "SQLite in the temp folder"
    return f"""{SECTION}

Trains the reward model on the same data and base twice: through Flywheel's pipeline
(`snapshot_create` → `model_version_create` → `runs.version_train`: train, evaluate, register,
gate) and with a bare TRL `RewardTrainer` script (the code a user would write: tokenizer,
`AutoModelForSequenceClassification(num_labels=1)`, `Dataset.from_json` on the same
`preferences_train.jsonl`, TRL's own tokenisation, `train()`, `save_model`).
Both sides use the same hyperparameters and fp32 without activation checkpointing:
{args.epochs:g} epoch(s), batch size {args.batch_size}, learning rate {args.lr:g}, seed {args.seed},
max length {args.max_length}.

```sh
{command_line(args)}
```

**Machine:** {context["machine"]}, CPU only.
The 2 cores were shared with other engineers' runs; torch used one thread (`OMP_NUM_THREADS=1`).
Load average: {context["load_before"]:.1f} before, {context["load_after"]:.1f} after.
Software: {context["versions"]}. Database: {database}.
**No GPU in this session:** the GPU row below is left for a session that has one.

Base: {base}.
Data: {args.pairs} realistic, generated comparison tasks on distinct prompts, each judged by three
annotators and exported by `snapshot_create` (about 10% of prompts go to validation). The
preferred reply gives concrete steps, the other stays vague, and neither is longer on average.

{report}

| GPU | Flywheel | bare TRL |
| --- | ---: | ---: |
| not measured: no GPU in this session | – | – |

Notes:

- Each run is a fresh process; imports (torch, transformers, TRL, Django) are not timed on
  either side. Flywheel and bare runs alternate, so the neighbours' load falls on both.
- **Read the CPU seconds.** On this box wall-clock time follows the neighbours' load more than
  the code: the same run can take half as long as the one before it, which can make either side
  look faster. CPU seconds move much less (the spread line above), though contention inflates
  them a little too. Examples/s are preference pairs (two sequences each) per wall second of
  the train loop.
- "Training only" is `train_reward` against the whole bare script: both read the data, load
  the tokenizer and model, tokenise, train and save. "End to end" adds what only Flywheel does:
  the export, the version row, the evaluation on the held-out split, the artifact checksum, the
  gate and, when it passes, the deploy (which verifies the checksum again).
- Run 1 trains the project's first reward model. Later runs retrain on the same data against
  the deployed model, so their evaluation scores the held-out pairs twice (new and deployed);
  the same seed gives the same accuracy, so the gate (+1 point needed) rejects them.
- Tokens differ slightly: Flywheel encodes `[CLS] prompt [SEP] reply [SEP]` (`encode_pair`,
  shared with serving), TRL concatenates prompt and reply and appends EOS (`[SEP]`), giving
  `[CLS] prompt reply [SEP] [SEP]`. The sequence lengths are the same; final losses differ a
  little for that reason.
- Flywheel saves a checkpoint every 50 steps (resume after a crash) and deletes it after the
  model is saved; TRL's default is every 500 steps. Both save one at the last step. With more
  than 50 steps per run, the extra checkpoint is part of our overhead.
- Profiled before this table was taken: the train loops do the same work. The token counts per
  pair are identical, the data order is the same (same seed), and on the tiny model (54 steps,
  in one process, no database) our loop took 1.85 to 2.07 CPU s against bare TRL's 2.07 to 2.37.
  The progress callback's database writes (one per step here, at most one per 2 s) cost about
  1 ms of CPU each. Differences in the loop's wall time come from the neighbours' load.
- `RewardModel.score` on one CPU thread gains little from batching: a 22M-parameter encoder
  already keeps one core busy with a single reply, and a call's batch is padded to its longest
  reply. Batch 8 did best here; batches pay off on a GPU, which this session did not have.
- What remains of our overhead is mostly evaluation (a model load and one pass over the
  held-out pairs, two when a deployed model is rematched), then the export. The registry's own
  work (version row, checksums, gate, progress rows) takes well under a second.
- Evaluation was the largest part of our own overhead, so `RewardModel.score_pairs` now cuts
  its batches from the pairs sorted by length (rows were padded to the longest in a random
  batch: a third more tokens on the validation pairs), and `evaluate_reward` scores chosen and
  rejected replies in one call. Scores come back in the input order and agree with the old
  code to 5e-7. On the MiniLM model and 52 validation pairs, `evaluate_reward` went from 4.4 to
  3.6 CPU s (median of 3); scoring per CPU second rose from 25.6 to 30.6 responses at batch 8
  and from 21.3 to 27.0 at batch 32 (batch 64 is one batch per 64-candidate call either way).
  A single run before that change (first model, so one evaluation) measured +10.3% CPU end to
  end and +4.6% training only.
"""


def write_docs(section: str) -> None:
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    start = text.find(SECTION)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        following = text.find("\n## ", start + len(SECTION))
        end = len(text) if following == -1 else following + 1
        tail = text[end:]
        text = text[:start] + section.rstrip("\n") + "\n" + ("\n" + tail if tail else "")
    DOCS.write_text(text, encoding="utf-8")


# --- Main ------------------------------------------------------------------------------------


SAVED_OPTIONS = (
    "pairs",
    "repeats",
    "tiny",
    "epochs",
    "batch_size",
    "lr",
    "seed",
    "max_length",
    "database_url",
    "skip_scoring",
)


def report_and_docs(
    args: argparse.Namespace,
    ours: list[dict[str, Any]],
    bare: list[dict[str, Any]],
    scoring: dict[str, Any] | None,
    context: dict[str, Any],
) -> None:
    report = build_report(args, ours, bare, scoring, context)
    print(report)
    print(
        f"\nload average {context['load_before']:.1f} before, {context['load_after']:.1f} after; "
        f"{context['machine']}"
    )
    if args.write_docs:
        write_docs(docs_section(args, report, context))
        print(f"wrote '{SECTION}' in {DOCS.relative_to(ROOT)}")


def scoring_workload(pairs: list[Pair], seed: int) -> list[tuple[str, list[str]]]:
    """A few prompts, each with many candidate replies to rank (best-of-n): where batching matters."""
    rng = random.Random(seed)
    replies = [text for pair in pairs for text in (pair.chosen, pair.rejected)]
    return [
        (pair.prompt, rng.sample(replies, SCORE_RESPONSES_PER_PROMPT))
        for pair in rng.sample(pairs, SCORE_PROMPTS)
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        spec = json.loads(args.spec.read_text())
        result = CHILDREN[args.child](spec)
        Path(spec["result"]).write_text(json.dumps(result))
        return 0

    if args.from_results:
        saved = json.loads(args.from_results.read_text())
        # The report describes the run that was measured, with its options.
        for option, value in saved["args"].items():
            setattr(args, option, value)
        report_and_docs(args, saved["ours"], saved["bare"], saved["scoring"], saved["context"])
        return 0

    work = Path(tempfile.mkdtemp(prefix="flywheel-train-bench-"))
    load_before = os.getloadavg()[0]
    try:
        env = child_env(args, work)
        prepare_database(args.database_url)
        setup_django(env)
        from django.core.management import call_command

        call_command("migrate", "--noinput", verbosity=0)
        pairs = preference_pairs(args.pairs, args.seed)
        project_id = seed_project(pairs, args.seed)
        export = export_once(project_id)
        if args.tiny:
            from training.tiny import build_tiny_encoder, synthetic_corpus

            # 512 positions, so that neither side truncates or filters what the other keeps.
            base = build_tiny_encoder(work / "tiny-encoder", synthetic_corpus(export), max_length=512)
        else:
            from training.reward import default_reward_base

            base = args.base or default_reward_base()
        hp = HyperParams(args.epochs, args.batch_size, args.lr, args.seed, args.max_length)
        # Read the base once so that the first timed run does not pay for a cold page cache.
        for path in Path(base).rglob("*"):
            if path.is_file():
                path.read_bytes()

        ours: list[dict[str, Any]] = []
        bare: list[dict[str, Any]] = []
        for repeat in range(1, args.repeats + 1):
            print(f"run {repeat}/{args.repeats}: Flywheel pipeline ...", file=sys.stderr, flush=True)
            ours.append(
                run_child("ours", {"hp": asdict(hp), "base": str(base), "project_id": project_id}, env, work)
            )
            if ours[-1]["status"] == "failed":
                raise SystemExit(f"the Flywheel run failed:\n{ours[-1]['error']}")
            print(f"run {repeat}/{args.repeats}: bare TRL ...", file=sys.stderr, flush=True)
            out = work / f"bare-{repeat}"
            bare.append(
                run_child(
                    "bare",
                    {
                        "hp": asdict(hp),
                        "base": str(base),
                        "data_file": str(export / "preferences_train.jsonl"),
                        "out": str(out),
                    },
                    env,
                    work,
                )
            )
            shutil.rmtree(out, ignore_errors=True)

        scoring = None
        if not args.skip_scoring:
            print("scoring throughput ...", file=sys.stderr, flush=True)
            scoring = run_child(
                "score",
                {
                    "model": ours[0]["artifact"],
                    "workload": scoring_workload(pairs, args.seed),
                    "repeats": args.repeats,
                },
                env,
                work,
            )
        counts = json.loads((export / "manifest.json").read_text())["counts"]
        context = {
            "machine": machine(),
            "versions": versions(),
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
            "train_pairs": counts["preferences_train"],
            "validation_pairs": counts["preferences_validation"],
        }
        if args.save_results:
            options = {option: getattr(args, option) for option in SAVED_OPTIONS}
            args.save_results.write_text(
                json.dumps(
                    {"args": options, "ours": ours, "bare": bare, "scoring": scoring, "context": context},
                    indent=1,
                )
            )
        report_and_docs(args, ours, bare, scoring, context)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            # Exports are written read-only; make them removable first.
            for path in work.rglob("*"):
                if path.is_file():
                    path.chmod(0o644)
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
