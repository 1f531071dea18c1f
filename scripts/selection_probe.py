"""What a simulated run's reward models learned, and what its selection asked (docs/flywheel.md,
*An oracle that asks about the model's mistakes*).

    .venv/bin/python scripts/selection_probe.py minimal seed2=/tmp/s6-a/models/2/reward/v8 ...
    DATABASE_URL=... .venv/bin/python scripts/selection_probe.py pairs PROJECT_ID ...

`minimal`: each model's accuracy on minimal pairs of the simulated world, 150 per rule: the same
reply with "please" in front or not, with one filler more or not, with the right colour or a
wrong one. `pairs`: over a simulation project's queued pairs (gold excluded), round 1's against
the later ones on training prompts: how often the better reply by the hidden rule has more
fillers, fewer polite words, or a different colour correctness than the worse one.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

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


def minimal(models: list[str]) -> None:
    from training.serving import RewardModel

    probes = minimal_pairs()
    for item in models:
        label, folder = item.split("=", 1)
        model = RewardModel.load(Path(folder))
        cells = []
        for rule, pairs in probes.items():
            better = model.score_pairs([(p, a) for p, a, _ in pairs])
            worse = model.score_pairs([(p, b) for p, _, b in pairs])
            cells.append(f"{rule} {sum(x > y for x, y in zip(better, worse, strict=True)) / len(pairs):.0%}")
        print(label, ", ".join(cells), flush=True)


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
            counted = fillers = polite = colour = equal = 0
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
            print(
                f"project {project_id}, {name}: {counted} pairs; the better has more fillers "
                f"{fillers / counted:.0%}, fewer polite words {polite / counted:.0%}; colour differs "
                f"{colour / counted:.0%}; {equal} equal"
            )


if __name__ == "__main__":
    command, *arguments = sys.argv[1:] or ["help"]
    if command == "minimal":
        minimal(arguments)
    elif command == "pairs":
        pairs([int(a) for a in arguments])
    else:
        raise SystemExit(__doc__)
