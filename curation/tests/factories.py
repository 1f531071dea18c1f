from __future__ import annotations

import random

from feedback.models import Project, Prompt, PromptSource, Response, ResponseSource

WORDS = (
    "river mountain garden kitchen window travel number answer question history science music "
    "simple quickly careful between another morning evening paper stone bridge market teacher "
    "student village ocean forest engine library winter summer coffee bread letter doctor "
    "planet energy signal pattern method system reason change moment friend"
).split()


def paragraph(seed: int, words: int = 60) -> str:
    """A sentence-like text that shares no 5-word shingle with other seeds in practice."""
    rng = random.Random(seed)
    body = [rng.choice(WORDS) for _ in range(words)]
    return "Please explain how the " + " ".join(body) + " works in practice, with an example."


def variant(text: str, seed: int, edits: int = 1) -> str:
    """The same text with `edits` words replaced: a near duplicate."""
    rng = random.Random(seed)
    words = text.split()
    for _ in range(edits):
        i = rng.randrange(3, len(words) - 3)
        words[i] = rng.choice(["lantern", "harbor", "violin", "meadow", "copper"])
    return " ".join(words)


def add_prompt(project: Project, text: str) -> Prompt:
    return Prompt.objects.create(project=project, text=text, source=PromptSource.SEED)


def add_demo(prompt: Prompt, text: str) -> Response:
    return Response.objects.create(
        project_id=prompt.project_id, prompt=prompt, text=text, source=ResponseSource.DEMONSTRATION
    )
