"""A simulated flywheel: simulated annotators drive the real services, round after round, so the
loop can be measured end to end against a preference that is known exactly.

What is real, the code a deployment runs:

- every judgment goes through `assignment_next` then `comparison_submit` (or `assignment_skip`),
  the services the browser calls, with the lease's `left_side` deciding which response is drawn
  on the left; trust comes from `annotator_trust_refresh`, and `annotator_stats` flags;
- curation is `project_curate`, the snapshot is `snapshot_create`;
- the reward model is trained, evaluated against the deployed one on the same held-out split,
  gated and deployed by `training.runs.version_train`, on a tiny encoder built at the start;
- the deployed reward model is served by the inference slots (`training.inference.score`);
- pairs are chosen by `workers.selection.select_tasks` under the project's selection policy.

What is simulated:

- the people. Each annotator holds a hidden preference, a scoring rule over responses (points
  per polite word, a cost per filler word, a bonus for the right colour), and picks the left
  response with Bradley-Terry probability sigmoid((s_left - s_right) / temperature). Careless
  annotators press "A is better" on every task (the left side) or any of the four keys, fast;
- the policy. A tiny policy writes noise, so candidates come from a template generator, and the
  deployed reward model picks the best k of n samples (best-of-n): the only way candidate quality
  moves is through the reward model, as in a real loop that decodes best-of-n;
- the truth. Accuracy is measured on a fixed set of pairs that no annotator sees, ordered by
  the hidden preference itself, not by votes.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from django.db.models import Q

from curation.models import CurationDecision, ItemKind, Status
from curation.services import curation_settings, project_curate
from curation.snapshots import snapshot_create, validation_prompt_ids
from feedback.models import (
    Choice,
    ComparisonTask,
    Judgment,
    JudgmentSource,
    Project,
    Prompt,
    PromptSource,
    Response,
    ResponseSource,
    Side,
    Strength,
)
from feedback.selectors import aggregated_preferences, annotator_stats
from feedback.services import (
    annotator_trust_refresh,
    assignment_next,
    assignment_skip,
    comparison_submit,
    comparison_task_create,
    project_create,
    prompt_create,
    response_create,
)
from flywheel.errors import Conflict
from flywheel.models import Role, User
from flywheel.services import user_ensure
from training.config import RewardTrainConfig
from workers.pipeline import next_version_create, pipeline_settings, with_embeddings
from workers.selection import EXPLORE_SHARE, Candidate, Doubt, preference_probability, select_tasks

logger = logging.getLogger(__name__)

# --- The hidden world (pure) -----------------------------------------------------------------

COLOR_OF = {
    "sky": "blue",
    "grass": "green",
    "sun": "yellow",
    "snow": "white",
    "coal": "black",
    "rose": "red",
    "sea": "blue",
    "lemon": "yellow",
    "cloud": "grey",
    "plum": "purple",
    "milk": "white",
    "leaf": "green",
}
COLOURS = ("blue", "green", "yellow", "white", "black", "red", "grey", "purple", "orange", "brown")
WHENS = (
    "today",
    "at noon",
    "in winter",
    "in the evening",
    "in spring",
    "after the rain",
    "at dawn",
    "in summer",
)
# Gold questions use their own times of day: a gold prompt that repeated a pool prompt would be
# curated away as its duplicate, taking the pool prompt's comparisons out of every snapshot.
GOLD_WHENS = ("on monday", "at midnight", "in the fog", "under the moon", "at the lake")
POLITE = ("please", "thanks", "kindly")
FILLERS = ("really", "very", "quite", "surely", "just", "also", "indeed", "truly")
FRAMES = (
    "the {thing} is {colour}",
    "it is {colour}",
    "{colour}, of course",
    "i think the {thing} is {colour}",
    "the answer is {colour}",
    "{colour} is the colour of the {thing}",
)


def prompt_text(thing: str, when: str) -> str:
    return f"what color is the {thing} {when}?"


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def thing_of(prompt: str) -> str:
    return next(word for word in words_of(prompt) if word in COLOR_OF)


@dataclass(frozen=True)
class HiddenPreference:
    """The rule every careful annotator judges by, and the truth accuracy is measured against."""

    polite: float = 1.0
    filler: float = -0.5
    correct: float = 2.0

    def score(self, prompt: str, response: str) -> float:
        words = words_of(response)
        named = [word for word in words if word in COLOURS]
        right = named == [COLOR_OF[thing_of(prompt)]]
        return (
            self.polite * sum(word in POLITE for word in words)
            + self.filler * sum(word in FILLERS for word in words)
            + self.correct * right
        )


def sample_response(prompt: str, rng: random.Random, *, p_correct: float = 0.6) -> str:
    """One reply from the stand-in policy: a frame, a colour (right 60% of the time), zero to
    four fillers anywhere and zero to two polite words at either end."""
    thing = thing_of(prompt)
    right = COLOR_OF[thing]
    colour = right if rng.random() < p_correct else rng.choice([c for c in COLOURS if c != right])
    words = rng.choice(FRAMES).format(thing=thing, colour=colour).split()
    for filler in rng.sample(FILLERS, rng.randint(0, 4)):
        words.insert(rng.randint(0, len(words)), filler)
    polite = rng.choices((0, 1, 2), weights=(0.5, 0.35, 0.15))[0]
    for word in rng.sample(POLITE, polite):
        if rng.random() < 0.5:
            words.insert(0, word)
        else:
            words.append(word)
    return " ".join(words)


def held_out_pairs(
    prompts: Sequence[str], preference: HiddenPreference, *, n: int, seed: int
) -> list[tuple[str, str, str]]:
    """(prompt, better, worse) by the hidden preference. Equal scores have no right answer, so
    they are left out."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str, str]] = []
    while len(pairs) < n:
        prompt = rng.choice(prompts)
        a, b = sample_response(prompt, rng), sample_response(prompt, rng)
        sa, sb = preference.score(prompt, a), preference.score(prompt, b)
        if sa != sb:
            pairs.append((prompt, a, b) if sa > sb else (prompt, b, a))
    return pairs


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


Kind = Literal["careful", "left", "random"]
Verdict = Literal["left", "right", "tie", "both_bad", "skip"]


@dataclass(frozen=True)
class Annotator:
    """A simulated person. `speed` is their share of turns relative to a careful annotator."""

    name: str
    kind: Kind = "careful"
    temperature: float = 0.5
    speed: float = 1.0
    skip_rate: float = 0.02
    tie_rate: float = 0.5

    @property
    def careless(self) -> bool:
        return self.kind != "careful"

    def decide(self, left: float, right: float, rng: random.Random) -> tuple[Verdict, str, int]:
        """(verdict, strength, milliseconds) for a pair whose hidden scores are `left` and `right`."""
        if self.kind == "left":
            return "left", "", rng.randint(800, 2500)
        if self.kind == "random":
            verdict: Verdict = rng.choice(("left", "right", "tie", "both_bad"))
            return verdict, "", rng.randint(800, 2500)
        millis = int(rng.lognormvariate(math.log(12_000), 0.4))
        if rng.random() < self.skip_rate:
            return "skip", "", millis
        if left == right and rng.random() < self.tie_rate:
            return "tie", "", millis
        verdict = "left" if rng.random() < sigmoid((left - right) / self.temperature) else "right"
        return verdict, Strength.CLEAR if abs(left - right) >= 1 else Strength.SLIGHT, millis


def default_cast(
    *, careful: int, careless_left: int, careless_random: int, temperature: float
) -> list[Annotator]:
    # Careless clickers are fast, so they take more of the queue than their head count.
    cast = [Annotator(f"careful{i + 1}", "careful", temperature=temperature) for i in range(careful)]
    cast += [Annotator(f"leftclicker{i + 1}", "left", speed=1.5) for i in range(careless_left)]
    cast += [Annotator(f"randomclicker{i + 1}", "random", speed=1.5) for i in range(careless_random)]
    return cast


# --- Configuration and results -----------------------------------------------------------------

# Like training/tests/conftest.py REWARD_DEFAULTS: tiny models, a few dozen steps.
REWARD_CONFIG: dict[str, Any] = {"epochs": 3, "batch_size": 8, "lr": 1e-3, "save_steps": 1000}
# The product's reward base, all-MiniLM-L6-v2, is pretrained: the same steps at the product's
# default learning rate for full fine-tuning of a reward model (RewardTrainConfig, 3e-5), not the
# tiny model's 1e-3, which would wreck pretrained weights.
MINILM_REWARD_CONFIG: dict[str, Any] = {**REWARD_CONFIG, "lr": RewardTrainConfig.default_lr_full}
REWARD_BASES = ("tiny", "minilm")
# A selection for the simulation only, not a product policy: the uncertainty policy's spread, with
# each pair's doubt the deployed model's probability of ordering it wrong by the hidden truth. It
# asks about the model's confident mistakes first, which no model-based doubt can find, and never
# about pairs with no right answer: a bound on what choosing pairs can buy in this world.
ORACLE = "oracle"


@dataclass(frozen=True)
class SimulationConfig:
    selection: str = "random"
    rounds: int = 8
    budget: int = 150  # judgments per round, gold included: everything a person spends time on
    seed: int = 0
    pool_prompts: int = 48
    initial_candidates: int = 4
    candidates_per_round: int = 2  # per prompt, kept from best_of_n samples
    best_of_n: int = 6
    max_pairs_per_prompt: int = 2  # as step_pairs
    explore: float = EXPLORE_SHARE  # under uncertainty, the share of tasks drawn at random
    # An ablation: the validation prompts' pairs drawn at random whatever the policy, as the
    # product does (off: chosen by the policy like the rest, as before).
    random_validation: bool = True
    careful: int = 6
    careless_left: int = 1
    careless_random: int = 1
    temperature: float = 0.5
    overlap_k: int = 3
    gold_rate: float = 0.1
    gold_tasks: int = 40
    validation_percent: int = 20
    held_out: int = 400
    held_out_seed: int = 12345
    warm_start: bool = False
    # The reward gate: its rule and, for the margin rule, the margin over the deployed model in
    # accuracy points (None: the project's defaults).
    gate_rule: str | None = None
    gate_margin: float | None = None
    # Whether the gate also judges on the project's gold pairs (None: the project's default, on).
    gate_gold: bool | None = None
    reward_config: dict[str, Any] = field(default_factory=lambda: dict(REWARD_CONFIG))
    reward_base: str = "tiny"  # which of REWARD_BASES the encoder is: a record, not a switch
    preference: HiddenPreference = field(default_factory=HiddenPreference)
    label: str = ""  # names this run's project and users; unique per run

    def tasks_per_round(self) -> int:
        return max(1, round(self.budget * (1 - self.gold_rate) / self.overlap_k))


@dataclass
class RoundRecord:
    round: int
    selection: str
    seed: int
    judgments: int  # cumulative, gold included
    judgments_round: int
    skips_round: int
    preference_pairs: int  # train + validation pairs in this round's snapshot
    version: int
    promoted: bool
    gate_rule: str
    gate_numbers: dict[str, Any]
    accuracy_trained: float  # the new version on the hidden held-out pairs
    accuracy_deployed: float  # whatever serves after the gate
    deployed_version: int | None
    candidates_made: int
    candidate_quality: float  # mean hidden score of this round's new candidates
    curation_kept: int  # cumulative, responses
    curation_removed: dict[str, int]  # cumulative, responses, by reason
    promotions: int
    rejections: int
    trust: dict[str, float]
    flagged: list[str]
    seconds: float
    # What selection bought. The pairs queued for the next round: mean hidden score gap, and the
    # share whose hidden scores are equal (no right answer). The votes so far: the share of full
    # tasks whose trust-weighted vote named a winner, and how many of those winners were right.
    queued_gap: float = math.nan
    queued_equal: float = math.nan
    labels_decided: float = math.nan
    labels_right: float = math.nan


@dataclass
class AnnotatorReport:
    name: str
    kind: str
    judgments: int
    trust: float
    flagged: bool
    gold_accuracy: float | None
    agreement: float | None
    median_seconds: float | None
    left_share: float | None  # share of A/B verdicts that went to the left side


@dataclass
class SimulationResult:
    config: SimulationConfig
    project_id: int
    rounds: list[RoundRecord]
    annotators: list[AnnotatorReport]


# --- Orchestration ---------------------------------------------------------------------------


@dataclass
class _World:
    config: SimulationConfig
    project: Project
    users: dict[int, tuple[User, Annotator]]
    pool: list[Prompt]
    held_out: list[tuple[str, str, str]]
    encoder: Path
    rng: random.Random
    models: dict[str, Any] = field(default_factory=dict)


def encoder_corpus(*, seed: int = 0, samples: int = 3000) -> list[str]:
    """Text to train the tiny encoder's tokenizer on: every word the world can produce."""
    rng = random.Random(seed)
    prompts = [prompt_text(t, w) for t in COLOR_OF for w in (*WHENS, *GOLD_WHENS)]
    corpus = list(prompts)
    for _ in range(samples):
        corpus.append(sample_response(rng.choice(prompts), rng))
    corpus += [" ".join((*POLITE, *FILLERS, *COLOURS))]
    return corpus


def tiny_encoder_build(folder: Path, *, seed: int = 0) -> Path:
    """The reward base every simulated run trains from (lazy torch import: training only)."""
    from training.tiny import build_tiny_encoder

    if (folder / "config.json").exists():
        return folder
    return build_tiny_encoder(folder, encoder_corpus(seed=seed), seed=seed)


def reward_base_path(name: str, tiny_folder: Path) -> Path:
    """The reward base a run trains from: the tiny encoder (built in `tiny_folder` if missing) or
    the product's default, all-MiniLM-L6-v2, as installed (no download)."""
    if name == "minilm":
        from training.reward import default_reward_base

        return default_reward_base()
    if name != "tiny":
        raise ValueError(f"unknown reward base {name!r}; one of {', '.join(REWARD_BASES)}")
    return tiny_encoder_build(tiny_folder)


def _setup(config: SimulationConfig, encoder: Path) -> _World:
    rng = random.Random(config.seed)
    label = config.label or f"{config.selection}-s{config.seed}-{secrets.token_hex(3)}"
    project = project_create(
        actor=None,
        name=f"flywheel-sim {label}",
        guidelines="Simulated annotators: prefer polite, concise, correct answers.",
        overlap_k=config.overlap_k,
        gold_rate=config.gold_rate,
    )
    cfg = pipeline_settings(project=project)
    cfg.selection_policy = "uncertainty" if config.selection == ORACLE else config.selection
    cfg.reward_base = str(encoder)
    cfg.reward_config = {**config.reward_config, "seed": config.seed}
    cfg.reward_warm_start = config.warm_start
    cfg.save()
    # A held-out split big enough for the gate to compare two models on (as the demo does).
    curation_cfg = curation_settings(project=project)
    curation_cfg.validation_percent = config.validation_percent
    curation_cfg.save()
    if config.gate_rule is not None or config.gate_margin is not None or config.gate_gold is not None:
        from training.services import gate_settings

        gate_cfg = gate_settings(project=project)
        gate_cfg.reward_rule = config.gate_rule or gate_cfg.reward_rule
        gate_cfg.reward_min_gain_points = (
            config.gate_margin if config.gate_margin is not None else gate_cfg.reward_min_gain_points
        )
        if config.gate_gold is not None:
            gate_cfg.reward_use_gold = config.gate_gold
        gate_cfg.save()

    users: dict[int, tuple[User, Annotator]] = {}
    cast = default_cast(
        careful=config.careful,
        careless_left=config.careless_left,
        careless_random=config.careless_random,
        temperature=config.temperature,
    )
    for person in cast:
        # Trust is global to a user, so every run has its own people.
        user, _ = user_ensure(
            username=f"sim-{label}-{person.name}"[:150], role=Role.ANNOTATOR, password=secrets.token_urlsafe()
        )
        users[user.pk] = (user, person)

    things = list(COLOR_OF)
    combos = [(t, w) for w in WHENS for t in things][: config.pool_prompts]
    pool = [
        prompt_create(project=project, text=prompt_text(t, w), source=PromptSource.SEED) for t, w in combos
    ]
    for prompt in pool:
        for _ in range(config.initial_candidates):
            response_create(
                prompt=prompt,
                text=sample_response(prompt.text, rng),
                source=ResponseSource.MODEL,
                model_name="sim-policy-r0",
            )
    _gold_tasks_create(project, config, rng)
    held_out = held_out_pairs(
        [p.text for p in pool], config.preference, n=config.held_out, seed=config.held_out_seed
    )
    return _World(
        config=config, project=project, users=users, pool=pool, held_out=held_out, encoder=encoder, rng=rng
    )


def _gold_tasks_create(project: Project, config: SimulationConfig, rng: random.Random) -> None:
    """Gold comparisons with a clear answer (two points or more apart), as a project would seed."""
    gold_prompts = [prompt_text(t, w) for w in GOLD_WHENS for t in COLOR_OF]
    rng.shuffle(gold_prompts)
    for text in gold_prompts[: config.gold_tasks]:
        while True:
            a, b = sample_response(text, rng), sample_response(text, rng)
            sa, sb = config.preference.score(text, a), config.preference.score(text, b)
            if abs(sa - sb) >= 2:
                break
        prompt = prompt_create(project=project, text=text, source=PromptSource.SEED)
        response_a = response_create(prompt=prompt, text=a, source=ResponseSource.SEED)
        response_b = response_create(prompt=prompt, text=b, source=ResponseSource.SEED)
        comparison_task_create(
            project=project,
            prompt=prompt,
            response_a=response_a,
            response_b=response_b,
            is_gold=True,
            gold_answer=Choice.A if sa > sb else Choice.B,
        )


def _annotate(world: _World, budget: int) -> tuple[int, int]:
    """People take tasks until the round's budget of judgments is spent or nobody gets one."""
    made = skipped = 0
    idle: set[int] = set()
    preference = world.config.preference
    rng = world.rng
    while made < budget and len(idle) < len(world.users):
        working = [uid for uid in world.users if uid not in idle]
        uid = rng.choices(working, weights=[world.users[u][1].speed for u in working])[0]
        user, person = world.users[uid]
        assignment = assignment_next(project=world.project, annotator=user, rng=rng)
        if assignment is None:
            idle.add(uid)
            continue
        task = ComparisonTask.objects.select_related("prompt", "response_a", "response_b").get(
            pk=assignment.task_id
        )
        # Drawn as the browser draws it: left_side names the response on the left.
        left, right = (
            (task.response_a, task.response_b)
            if assignment.left_side == Side.A
            else (task.response_b, task.response_a)
        )
        verdict, strength, millis = person.decide(
            preference.score(task.prompt.text, left.text), preference.score(task.prompt.text, right.text), rng
        )
        if verdict == "skip":
            assignment_skip(assignment=assignment, annotator=user, reason="not sure")
            skipped += 1
            continue
        other = Side.B if assignment.left_side == Side.A else Side.A
        choice = {
            "left": assignment.left_side,
            "right": other,
            "tie": Choice.TIE,
            "both_bad": Choice.BOTH_BAD,
        }[verdict]
        try:
            comparison_submit(
                assignment=assignment,
                annotator=user,
                choice=choice,
                strength=strength,
                time_spent_ms=millis,
                idempotency_key=f"{rng.getrandbits(64):016x}",
                source=JudgmentSource.UI,
            )
        except Conflict:
            # The browser shows the conflict and moves on; so does the simulated person.
            continue
        made += 1
    return made, skipped


def _reward_model(world: _World, folder: str) -> Any:
    from training.serving import RewardModel

    if folder not in world.models:
        world.models[folder] = RewardModel.load(Path(folder))
    return world.models[folder]


def _hidden_accuracy(world: _World, folder: str) -> float:
    model = _reward_model(world, folder)
    better = model.score_pairs([(p, a) for p, a, _ in world.held_out])
    worse = model.score_pairs([(p, b) for p, _, b in world.held_out])
    return sum(x > y for x, y in zip(better, worse, strict=True)) / len(world.held_out)


def _deployed_scores(world: _World) -> Callable[[str, list[str]], list[float]] | None:
    """The deployed reward model as the inference worker serves it, or None before the first."""
    from training import inference

    inference.SLOTS.refresh(world.project.pk, "reward")
    try:
        inference.SLOTS.get(world.project.pk, "reward")
    except inference.NoModelDeployed:
        return None

    def scores(prompt: str, responses: list[str]) -> list[float]:
        return list(
            inference.score(project_id=world.project.pk, prompt=prompt, responses=responses)["scores"]
        )

    return scores


def _retrain(world: _World, number: int) -> tuple[Any, Any, int]:
    """Snapshot, then train, evaluate, gate and deploy a reward model. Returns (version, decision,
    preference pairs)."""
    from training import runs, services
    from training.models import ModelKind

    snapshot = snapshot_create(project=world.project, actor=None, note=f"simulation round {number}")
    pairs = int(snapshot.counts.get("preferences_train", 0)) + int(
        snapshot.counts.get("preferences_validation", 0)
    )
    # As step_train: the base, the config and warm start (continue from the serving model) are
    # the project's pipeline settings, set when the world was made.
    version = next_version_create(project=world.project, kind=ModelKind.REWARD, snapshot=snapshot)
    if not snapshot.counts.get("preferences_train"):
        services.version_fail(version_id=version.pk, error="the snapshot has no preference pairs to train on")
        version.refresh_from_db()
        return version, None, pairs
    decision = runs.version_train(version_id=version.pk)
    version.refresh_from_db()
    return version, decision, pairs


def _generate(
    world: _World, number: int, scores: Callable[[str, list[str]], list[float]] | None
) -> list[float]:
    """New candidates for every pool prompt: best `candidates_per_round` of `best_of_n` samples by
    the deployed reward model (the first k samples before one is deployed)."""
    config = world.config
    quality: list[float] = []
    for prompt in world.pool:
        samples = [sample_response(prompt.text, world.rng) for _ in range(config.best_of_n)]
        if scores is not None:
            ranked = sorted(zip(scores(prompt.text, samples), range(len(samples)), strict=True), reverse=True)
            samples = [samples[index] for _, index in ranked]
        for text in samples[: config.candidates_per_round]:
            response_create(
                prompt=prompt, text=text, source=ResponseSource.MODEL, model_name=f"sim-policy-r{number}"
            )
            quality.append(config.preference.score(prompt.text, text))
    return quality


def _pairs(world: _World, number: int, scores: Callable[[str, list[str]], list[float]] | None) -> list[float]:
    """Queue the round's comparisons among kept candidates, chosen by the project's policy with
    `select_tasks`, as step_pairs does. Returns the hidden score gap of every queued pair."""
    from training import inference

    config = world.config
    policy = pipeline_settings(project=world.project).selection_policy
    existing = {
        frozenset(pair)
        for pair in ComparisonTask.objects.filter(project=world.project).values_list(
            "response_a_id", "response_b_id"
        )
    }
    kept = (
        Response.objects.filter(prompt__in=world.pool, curation__status=Status.KEPT)
        .select_related("prompt")
        .order_by("id")
    )
    by_prompt: dict[int, list[Response]] = {}
    for response in kept:
        by_prompt.setdefault(response.prompt_id, []).append(response)
    pools: dict[int, list[Candidate]] = {}
    featured = scores is not None and policy == "information"
    # As step_pairs: the committee's members are looked up once per round, not per prompt.
    committee = (
        inference.SLOTS.committee(world.project.pk) if scores is not None and policy == "committee" else None
    )
    for prompt_id, responses in by_prompt.items():
        if len(responses) < 2:
            continue
        values: list[float | None] = [None] * len(responses)
        features: list[tuple[float, ...] | None] = [None] * len(responses)
        members: list[tuple[float, ...] | None] = [None] * len(responses)
        if committee is not None:
            # As step_pairs: the deployed model's scores and the other committee members'.
            served = inference.committee_scores(
                project_id=world.project.pk,
                prompt=responses[0].prompt.text,
                responses=[r.text for r in responses],
                members=committee,
            )
            values = list(served["scores"][0])
            members = [tuple(column) for column in zip(*served["scores"], strict=True)]
        elif featured:
            # As step_pairs: scores and features from the deployed model in one pass.
            served = inference.score(
                project_id=world.project.pk,
                prompt=responses[0].prompt.text,
                responses=[r.text for r in responses],
                features=True,
            )
            values, features = list(served["scores"]), [tuple(v) for v in served["features"]]
        elif scores is not None:
            values = list(scores(responses[0].prompt.text, [r.text for r in responses]))
        pools[prompt_id] = [
            Candidate(id=r.pk, score=v, producer=r.model_name or r.source, features=f, committee=m)
            for r, v, f, m in zip(responses, values, features, members, strict=True)
        ]
    if scores is not None and policy == "contrast":
        # As step_pairs: the replies' embeddings for the contrast policy.
        pools = with_embeddings(pools, {r.pk: r.text for rs in by_prompt.values() for r in rs})
    doubt = None
    if config.selection == ORACLE and scores is not None:
        doubt = _oracle_doubt(config.preference, {r.pk: r for rs in by_prompt.values() for r in rs})
    chosen = select_tasks(
        pools,
        policy=policy,
        limit=config.tasks_per_round(),
        existing=existing,
        per_prompt=config.max_pairs_per_prompt,
        newest_producer=f"sim-policy-r{number}",
        explore=config.explore,
        validation=validation_prompt_ids(project=world.project) if config.random_validation else (),
        rng=world.rng,
        doubt=doubt,
    )
    responses_by_id = {r.pk: r for rs in by_prompt.values() for r in rs}
    gaps = []
    for _prompt_id, pair in chosen:
        a, b = responses_by_id[pair.a], responses_by_id[pair.b]
        comparison_task_create(
            project=world.project,
            prompt=a.prompt,
            response_a=a,
            response_b=b,
            priority=round(pair.priority, 6),
            training_weight=pair.weight,
        )
        gaps.append(
            abs(
                config.preference.score(a.prompt.text, a.text)
                - config.preference.score(a.prompt.text, b.text)
            )
        )
    return gaps


def _oracle_doubt(preference: HiddenPreference, responses: dict[int, Response]) -> Doubt:
    """The oracle's doubt (see ORACLE): P(the deployed model orders the pair wrong), 0 for pairs
    with equal hidden scores."""

    def doubt(x: Candidate, y: Candidate) -> float:
        rx, ry = responses[x.id], responses[y.id]
        gap = preference.score(rx.prompt.text, rx.text) - preference.score(ry.prompt.text, ry.text)
        if gap == 0:
            return 0.0
        assert x.score is not None and y.score is not None
        p = preference_probability(x.score, y.score)
        return 1.0 - p if gap > 0 else p

    return doubt


def _labels(world: _World) -> tuple[float, float]:
    """Over every non-gold task with a full set of votes so far: the share whose trust-weighted
    vote named a winner, and the share of those winners the hidden preference agrees with."""
    preference = world.config.preference
    decided = right = total = 0
    for item in aggregated_preferences(project=world.project, min_votes=world.config.overlap_k):
        total += 1
        winner = item.aggregate.winner
        if winner not in (Choice.A, Choice.B):
            continue
        decided += 1
        prompt = item.task.prompt.text
        sa = preference.score(prompt, item.task.response_a.text)
        sb = preference.score(prompt, item.task.response_b.text)
        right += int((sa > sb) if winner == Choice.A else (sb > sa))
    return (decided / total if total else math.nan, right / decided if decided else math.nan)


def _curation_totals(project: Project) -> tuple[int, dict[str, int]]:
    """Responses kept, and responses removed by reason (the first reason of each), so far."""
    rows = CurationDecision.objects.filter(project=project, kind=ItemKind.RESPONSE).exclude(
        status=Status.PENDING
    )
    kept = rows.filter(status=Status.KEPT).count()
    removed: Counter[str] = Counter()
    for status, reasons in rows.exclude(status=Status.KEPT).values_list("status", "reasons"):
        removed[reasons[0]["rule"] if reasons else str(status)] += 1
    return kept, dict(removed)


def _annotator_reports(world: _World) -> list[AnnotatorReport]:
    stats = {s.user_id: s for s in annotator_stats(project=world.project) if s.user_id in world.users}
    sides: dict[int, list[int]] = {uid: [0, 0] for uid in world.users}
    rows = Judgment.objects.filter(task__project=world.project, choice__in=[Choice.A, Choice.B]).filter(
        ~Q(left_side="")
    )
    for annotator_id, choice, left_side in rows.values_list("annotator_id", "choice", "left_side"):
        if annotator_id in sides:
            sides[annotator_id][0] += int(choice == left_side)
            sides[annotator_id][1] += 1
    reports = []
    for uid, (_user, person) in world.users.items():
        s = stats[uid]
        left, total = sides[uid]
        reports.append(
            AnnotatorReport(
                name=person.name,
                kind=person.kind,
                judgments=s.judgments,
                trust=s.trust,
                flagged=s.flagged,
                gold_accuracy=s.gold_accuracy,
                agreement=s.agreement,
                median_seconds=s.median_seconds,
                left_share=left / total if total else None,
            )
        )
    return reports


def run_simulation(
    config: SimulationConfig, *, encoder: Path, progress: Callable[[RoundRecord], None] | None = None
) -> SimulationResult:
    """Run `config.rounds` turns of the wheel on a fresh project; one record per round."""
    from training.models import GateDecision, ModelKind
    from training.services import active_deployment

    # assignment_next draws left_side from the global generator; seed it so a run repeats.
    random.seed(config.seed)
    world = _setup(config, encoder)
    project_curate(project_id=world.project.pk, trigger="simulation")
    _pairs(world, 0, None)
    records: list[RoundRecord] = []
    judgments = 0
    for number in range(1, config.rounds + 1):
        started = time.monotonic()
        made, skipped = _annotate(world, config.budget)
        judgments += made
        annotator_trust_refresh()
        project_curate(project_id=world.project.pk, trigger="simulation")
        version, decision, pairs = _retrain(world, number)
        deployed = active_deployment(project=world.project, kind=ModelKind.REWARD)
        scores = _deployed_scores(world)
        quality = _generate(world, number, scores)
        project_curate(project_id=world.project.pk, trigger="simulation")
        gaps = _pairs(world, number, scores)
        decided, right = _labels(world)
        kept, removed = _curation_totals(world.project)
        gates = GateDecision.objects.filter(version__project=world.project, version__kind=ModelKind.REWARD)
        reports = _annotator_reports(world)
        record = RoundRecord(
            round=number,
            selection=config.selection,
            seed=config.seed,
            judgments=judgments,
            judgments_round=made,
            skips_round=skipped,
            preference_pairs=pairs,
            version=version.number,
            promoted=bool(decision and decision.passed),
            gate_rule=decision.rule if decision else version.error.splitlines()[0] if version.error else "",
            gate_numbers=dict(decision.numbers) if decision else {},
            accuracy_trained=_hidden_accuracy(world, version.artifact_path)
            if version.artifact_path
            else math.nan,
            # With nothing deployed the loop ranks pairs by chance.
            accuracy_deployed=(
                _hidden_accuracy(world, deployed.version.artifact_path) if deployed is not None else 0.5
            ),
            deployed_version=deployed.version.number if deployed is not None else None,
            candidates_made=len(quality),
            candidate_quality=sum(quality) / len(quality) if quality else math.nan,
            curation_kept=kept,
            curation_removed=removed,
            promotions=gates.filter(passed=True).count(),
            rejections=gates.filter(passed=False).count(),
            trust={r.name: r.trust for r in reports},
            flagged=[r.name for r in reports if r.flagged],
            seconds=round(time.monotonic() - started, 1),
            queued_gap=sum(gaps) / len(gaps) if gaps else math.nan,
            queued_equal=sum(gap == 0 for gap in gaps) / len(gaps) if gaps else math.nan,
            labels_decided=decided,
            labels_right=right,
        )
        records.append(record)
        if progress is not None:
            progress(record)
    return SimulationResult(
        config=config, project_id=world.project.pk, rounds=records, annotators=_annotator_reports(world)
    )


# --- Comparing policies ----------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    selection: str
    judgments: list[float]  # mean over seeds, per round
    accuracy: list[float]  # mean over seeds, per round


def mean_curve(results: Sequence[SimulationResult], *, metric: str = "accuracy_deployed") -> Curve:
    rounds = min(len(r.rounds) for r in results)
    judgments = [sum(r.rounds[i].judgments for r in results) / len(results) for i in range(rounds)]
    accuracy = [sum(getattr(r.rounds[i], metric) for r in results) / len(results) for i in range(rounds)]
    return Curve(selection=results[0].config.selection, judgments=judgments, accuracy=accuracy)


def judgments_to_reach(curve: Curve, target: float) -> tuple[float | None, float | None]:
    """(judgments at the first round at or above `target`, the same by linear interpolation
    between rounds); None when the curve never gets there."""
    for i, accuracy in enumerate(curve.accuracy):
        if accuracy >= target:
            if i == 0:
                return curve.judgments[0], curve.judgments[0]
            a0, a1 = curve.accuracy[i - 1], accuracy
            j0, j1 = curve.judgments[i - 1], curve.judgments[i]
            interpolated = j0 + (j1 - j0) * ((target - a0) / (a1 - a0)) if a1 > a0 else j1
            return curve.judgments[i], interpolated
    return None, None


@dataclass(frozen=True)
class Comparison:
    target: float  # random's final (mean) accuracy
    random_judgments: float
    uncertainty_judgments: float | None
    uncertainty_interpolated: float | None

    @property
    def saving(self) -> float | None:
        if self.uncertainty_judgments is None:
            return None
        return 1 - self.uncertainty_judgments / self.random_judgments

    @property
    def saving_interpolated(self) -> float | None:
        if self.uncertainty_interpolated is None:
            return None
        return 1 - self.uncertainty_interpolated / self.random_judgments


def compare(random_curve: Curve, uncertainty_curve: Curve) -> Comparison:
    target = random_curve.accuracy[-1]
    at_round, interpolated = judgments_to_reach(uncertainty_curve, target)
    return Comparison(
        target=target,
        random_judgments=random_curve.judgments[-1],
        uncertainty_judgments=at_round,
        uncertainty_interpolated=interpolated,
    )


def results_dump(results: Sequence[SimulationResult], path: Path) -> Path:
    """Every round's record, to summarise or plot again later without rerunning."""
    rows = [
        {
            "selection": r.config.selection,
            "seed": r.config.seed,
            "config": asdict(r.config),
            "project": r.project_id,
            "rounds": [asdict(x) for x in r.rounds],
            "annotators": [asdict(a) for a in r.annotators],
        }
        for r in results
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1, default=str))
    return path


def results_load(path: Path) -> list[SimulationResult]:
    """Records written by results_dump. Only the policy and seed of each run's config come back."""
    return [
        SimulationResult(
            config=SimulationConfig(selection=row["selection"], seed=row["seed"]),
            project_id=row["project"],
            rounds=[RoundRecord(**x) for x in row["rounds"]],
            annotators=[AnnotatorReport(**a) for a in row["annotators"]],
        )
        for row in json.loads(path.read_text())
    ]


def with_selection(config: SimulationConfig, selection: str, seed: int) -> SimulationConfig:
    return replace(config, selection=selection, seed=seed, label="")


def plot(results: Sequence[SimulationResult], path: Path, *, title: str = "") -> Path:
    """Hidden-preference accuracy against judgments spent, per policy: on the left the deployed
    reward model (what the loop serves, after the gate), on the right each round's new version
    (what training made of the data, gate or not). Each seed thin, the mean over seeds bold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {
        "random": "tab:blue",
        "uncertainty": "tab:orange",
        "information": "tab:red",
        "committee": "tab:purple",
        "contrast": "tab:brown",
        "new_vs_old": "tab:green",
    }
    figure, panels = plt.subplots(1, 2, figsize=(11, 4.5), dpi=110, sharey=True)
    by_policy: dict[str, list[SimulationResult]] = {}
    for result in results:
        by_policy.setdefault(result.config.selection, []).append(result)
    for axes, metric, heading in (
        (panels[0], "accuracy_deployed", "deployed reward model (after the gate)"),
        (panels[1], "accuracy_trained", "each round's new version"),
    ):
        for policy, group in by_policy.items():
            colour = colours.get(policy, "tab:grey")
            for result in group:
                axes.plot(
                    [r.judgments for r in result.rounds],
                    [getattr(r, metric) for r in result.rounds],
                    color=colour,
                    alpha=0.25,
                    linewidth=1,
                )
            curve = mean_curve(group, metric=metric)
            axes.plot(
                curve.judgments,
                curve.accuracy,
                color=colour,
                linewidth=2.5,
                marker="o",
                label=f"{policy} (mean of {len(group)} seed{'s' if len(group) > 1 else ''})",
            )
        if "random" in by_policy:
            final = mean_curve(by_policy["random"], metric=metric).accuracy[-1]
            axes.axhline(final, color="tab:blue", linestyle=":", linewidth=1, label="random's final accuracy")
        axes.set_title(heading, fontsize=10)
        axes.set_xlabel("judgments spent (gold included)")
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right", fontsize=8)
    panels[0].set_ylabel("accuracy on held-out pairs\nordered by the hidden preference")
    figure.suptitle(title or "Flywheel simulation: reward model accuracy against judgments")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
