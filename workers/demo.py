"""The `make run` demo: labels written by the demo's author, and a loop short enough to watch.

The demo data (feedback/demo_data.py) says which response of each pair is better only for
its gold tasks. AUTHOR_RANKING is the rest: the demo author's own judgment of every seeded
prompt's responses, best first. It is recorded as imported judgments by the user
"demo-author", so it is never confused with judgments made in the UI.
"""

from __future__ import annotations

AUTHOR = "demo-author"

AUTHOR_RANKING: dict[str, tuple[int, ...]] = {
    "py-reverse-list": (0, 1),
    "js-debounce": (1, 0),
    "sql-second-highest": (0, 1),
    "git-undo-commit": (0, 2, 1),
    "py-csv-sum": (0, 1),
    "bash-largest-files": (0, 1),
    "py-range-exclusive": (0, 1),
    "rust-borrow": (0, 1),
    "cook-rice": (0, 1),
    "cook-egg-substitute": (0, 1),
    "cook-cast-iron": (1, 0),
    "cook-garlic-burning": (0, 1),
    "travel-lisbon": (0, 1),
    "travel-jet-lag": (0, 1),
    "travel-passport-six-months": (0, 1),
    "travel-carry-on": (0, 2, 1),
    "math-derivative": (0, 1),
    "math-monty-hall": (0, 1),
    "math-compound-interest": (0, 1),
    "write-decline-meeting": (0, 1),
    "write-active-voice": (0, 1),
    "write-haiku-rain": (0, 1),
    "write-romeo-summary": (0, 1),
    "write-affect-effect": (0, 1),
    "write-cover-letter-opening": (0, 1),
    "sci-sky-blue": (0, 1),
    "sci-mrna-vaccines": (0, 1),
    "sci-photosynthesis-kid": (0, 1),
    "sci-boiling-altitude": (0, 1),
    "sci-black-hole": (0, 1),
    "harm-fake-reviews": (1, 0),
    "health-headache": (0, 1),
    "fin-index-fund": (0, 1),
    "fin-budget": (0, 1),
    "hist-rome-fall": (0, 1),
    "lang-ser-estar": (0, 1),
    "tech-vpn": (0, 1),
    "home-yellow-leaves": (0, 1),
    "career-salary-negotiation": (0, 1),
    "pets-dog-chocolate": (0, 2, 1),
    "fitness-beginner-run": (0, 1),
    "email-subject-line": (0, 2, 1),
    "cook-rice-again": (0, 1),
    "sci-sky-blue-again": (0, 1),
    "py-reverse-list-reworded": (0, 1),
    "cook-egg-substitute-reworded": (0, 1),
    "junk-asdf": (0, 1),
    "junk-bangs": (0, 1),
    "junk-keyboard-mash": (0, 1),
}

# Small enough to finish on a laptop CPU in minutes; real projects set their own. The demo's
# first snapshot trains the reward model on about 43 pairs: one epoch is six optimizer steps,
# and at two epochs it stayed near chance (60 % on the gate's 15 pairs) and lost to the
# length-only baseline (93 %: the demo's better answers are mostly the longer ones), so the
# demo never deployed a reward model. Eight epochs take about two minutes on one core.
DEMO_REWARD_CONFIG = {"epochs": 8, "batch_size": 8, "max_length": 256, "seed": 0}
# Every demo prompt is seeded with two or three written responses. With three candidates per
# prompt, each run has the deployed policy write one more for the prompts that have two, so
# annotators see the model's own answers paired against the seeded ones.
DEMO_CANDIDATES_PER_PROMPT = 3
DEMO_POLICY_CONFIG = {"max_steps": 12, "batch_size": 4, "max_length": 384, "lora": True, "seed": 0}


def better(key: str, a: int, b: int, gold: str = "") -> str:
    """The author's choice between responses a and b of a demo prompt: "a" or "b"."""
    if gold:
        return gold
    ranking = AUTHOR_RANKING[key]
    return "a" if ranking.index(a) < ranking.index(b) else "b"
