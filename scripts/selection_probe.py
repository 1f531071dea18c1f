"""What a simulated run's reward models learned, and what its selection asked (docs/flywheel.md,
*An oracle that asks about the model's mistakes*).

    .venv/bin/python scripts/selection_probe.py minimal seed2=/tmp/s6-a/models/2/reward/v8 ...
    DATABASE_URL=... .venv/bin/python scripts/selection_probe.py pairs PROJECT_ID ...

`minimal`: each model's accuracy on minimal pairs of the simulated world, 150 per rule: the same
reply with "please" in front or not, with one filler more or not, with the right colour or a
wrong one. `pairs`: over a simulation project's queued pairs (gold excluded), round 1's against
the later ones on training prompts: how often the better reply by the hidden rule has more
fillers, fewer polite words, or a different colour correctness than the worse one.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/selection_probe.py learner random 300 1e-4 3 0

`learner SAMPLE N LR EPOCHS SEED`: the reward learner outside the loop (docs/flywheel.md, *The
learner, not the selection*). It trains all-MiniLM-L6-v2 from scratch on N pairs of the pool's
prompts, each labelled by the majority of three careful annotators (no careless ones, no gate),
and prints the simulation's held-out accuracy and the minimal-pair accuracies. SAMPLE is
`random` (two replies drawn for a prompt at random) or `colour` (only pairs whose colour
correctness differs and whose polite and filler words are worth the same within half a point:
what a policy that knows style but not colour is unsure of) or `mixed` (every other pair one of
each).
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel.settings")

import django

django.setup()

from workers import simulation as world  # noqa: E402


def minimal_pairs(seed: int = 7, n: int = 150) -> dict[str, list[tuple[str, str, str]]]:
    """(prompt, better, worse) pairs that differ by one rule each."""
    rng = random.Random(seed)
    prompts = [world.prompt_text(t, w) for w in world.WHENS for t in world.COLOR_OF][:48]
    probes: dict[str, list[tuple[str, str, str]]] = {"polite": [], "filler": [], "colour": []}
    for _ in range(n):
        prompt = rng.choice(prompts)
        thing = world.thing_of(prompt)
        right = world.COLOR_OF[thing]
        wrongs = [c for c in world.COLOURS if c != right]
        colour = right if rng.random() < 0.5 else rng.choice(wrongs)
        words = rng.choice(world.FRAMES).format(thing=thing, colour=colour).split()
        for filler in rng.sample(world.FILLERS, rng.randint(0, 2)):
            words.insert(rng.randint(0, len(words)), filler)
        probes["polite"].append((prompt, " ".join(["please", *words]), " ".join(words)))
        more = list(words)
        more.insert(rng.randint(0, len(more)), rng.choice([f for f in world.FILLERS if f not in words]))
        probes["filler"].append((prompt, " ".join(words), " ".join(more)))
        wrong = rng.choice(wrongs)
        probes["colour"].append(
            (
                prompt,
                " ".join(right if w == colour else w for w in words),
                " ".join(wrong if w == colour else w for w in words),
            )
        )
    return probes


def pair_accuracy(model: Any, pairs: list[tuple[str, str, str]]) -> float:
    better = model.score_pairs([(p, a) for p, a, _ in pairs])
    worse = model.score_pairs([(p, b) for p, _, b in pairs])
    return sum(x > y for x, y in zip(better, worse, strict=True)) / len(pairs)


def rule_cells(model: Any, probes: dict[str, list[tuple[str, str, str]]]) -> str:
    return ", ".join(f"{rule} {pair_accuracy(model, pairs):.0%}" for rule, pairs in probes.items())


def minimal(models: list[str]) -> None:
    from training.serving import RewardModel

    probes = minimal_pairs()
    for item in models:
        label, folder = item.split("=", 1)
        print(label, rule_cells(RewardModel.load(Path(folder)), probes), flush=True)


# Two replies whose polite and filler words are worth the same within this many points have "the
# same style": between them the hidden rule is decided by colour, if their colours' rightness differs.
STYLE_TIE = 0.5


def style(feature: tuple[int, int, bool]) -> float:
    """What a reply's polite and filler words are worth by the hidden rule, from `features`."""
    preference = world.HiddenPreference()
    return preference.polite * feature[0] + preference.filler * feature[1]


def colour_decides(x: tuple[int, int, bool], y: tuple[int, int, bool]) -> bool:
    return x[2] != y[2] and abs(style(x) - style(y)) <= STYLE_TIE


def learner(sample: str, n: int, lr: float, epochs: float, seed: int) -> None:
    import tempfile

    from training.config import RewardTrainConfig
    from training.reward import default_reward_base, train_reward
    from training.serving import RewardModel

    if sample not in ("random", "colour", "mixed"):
        raise SystemExit(f"SAMPLE is random, colour or mixed, not {sample!r}")
    preference = world.HiddenPreference()
    config = world.SimulationConfig()
    prompts = [world.prompt_text(t, w) for w in world.WHENS for t in world.COLOR_OF][: config.pool_prompts]
    careful = world.Annotator("probe", temperature=config.temperature, skip_rate=0.0, tie_rate=0.0)
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    while len(rows) < n:
        prompt = rng.choice(prompts)
        a, b = world.sample_response(prompt, rng), world.sample_response(prompt, rng)
        wants_colour = sample == "colour" or (sample == "mixed" and len(rows) % 2)
        if wants_colour and not colour_decides(features(prompt, a), features(prompt, b)):
            continue
        sa, sb = preference.score(prompt, a), preference.score(prompt, b)
        votes = sum(1 if careful.decide(sa, sb, rng)[0] == "left" else -1 for _ in range(3))
        chosen, rejected = (a, b) if votes > 0 else (b, a)
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        (data / "preferences_train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        train = RewardTrainConfig(
            data_dir=data, base=default_reward_base(), out=data / "model", seed=seed, epochs=epochs, lr=lr
        )
        train_reward(train)
        model = RewardModel.load(data / "model")
        held = world.held_out_pairs(prompts, preference, n=config.held_out, seed=config.held_out_seed)
        run = f"{sample} n={n} lr={lr:g} epochs={epochs:g} seed={seed}"
        cells = rule_cells(model, minimal_pairs())
        print(f"{run}: held-out {pair_accuracy(model, held):.1%}; {cells}", flush=True)


def features(prompt: str, reply: str) -> tuple[int, int, bool]:
    words = world.words_of(reply)
    named = [w for w in words if w in world.COLOURS]
    return (
        sum(w in world.POLITE for w in words),
        sum(w in world.FILLERS for w in words),
        named == [world.COLOR_OF[world.thing_of(prompt)]],
    )


def pairs(project_ids: list[int]) -> None:
    from curation.snapshots import validation_prompt_ids
    from feedback.models import ComparisonTask, Project

    preference = world.HiddenPreference()
    round_one = world.SimulationConfig().tasks_per_round()
    for project_id in project_ids:
        project = Project.objects.get(pk=project_id)
        held = set(validation_prompt_ids(project=project))
        tasks = list(
            ComparisonTask.objects.filter(project=project, is_gold=False)
            .select_related("prompt", "response_a", "response_b")
            .order_by("id")
        )
        groups = {
            "round 1": tasks[:round_one],
            "later, training prompts": [t for t in tasks[round_one:] if t.prompt_id not in held],
        }
        for name, group in groups.items():
            counted = fillers = polite = colour = decides = equal = 0
            for task in group:
                prompt, a, b = task.prompt.text, task.response_a.text, task.response_b.text
                sa, sb = preference.score(prompt, a), preference.score(prompt, b)
                if sa == sb:
                    equal += 1
                    continue
                win, lose = features(prompt, a if sa > sb else b), features(prompt, b if sa > sb else a)
                counted += 1
                fillers += win[1] > lose[1]
                polite += win[0] < lose[0]
                colour += win[2] != lose[2]
                decides += colour_decides(win, lose)
            print(
                f"project {project_id}, {name}: {counted} pairs; the better has more fillers "
                f"{fillers / counted:.0%}, fewer polite words {polite / counted:.0%}; colour differs "
                f"{colour / counted:.0%}, and decides (style within half a point) {decides / counted:.0%}; "
                f"{equal} equal"
            )


if __name__ == "__main__":
    command, *arguments = sys.argv[1:] or ["help"]
    if command == "minimal":
        minimal(arguments)
    elif command == "learner":
        if len(arguments) != 5:
            raise SystemExit(f"learner takes SAMPLE N LR EPOCHS SEED, not {' '.join(arguments) or 'nothing'}")
        sample, n, lr, epochs, seed = arguments
        learner(sample, int(n), float(lr), float(epochs), int(seed))
    elif command == "pairs":
        pairs([int(a) for a in arguments])
    else:
        raise SystemExit(__doc__)
