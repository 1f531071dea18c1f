"""The formats Flywheel reads and writes, by the name used in URLs and commands."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from interop.formats import arena, hh, oasst, trl
from interop.formats.hf import MESSAGES, Schema

Parser = Callable[[Iterable[bytes | str]], Iterator[tuple[int, Any]]]

PARSERS: dict[str, Parser] = {
    "trl-preference": trl.parse_preferences,
    "trl-sft": trl.parse_sft,
    "hh": hh.parse_hh,
    "oasst": oasst.parse_trees,
    "arena": arena.parse_battles,
}
FORMATS = tuple(PARSERS)

# Export styles per format; the first is the default.
STYLES: dict[str, tuple[str, ...]] = {
    "trl-preference": trl.PREFERENCE_STYLES,
    "trl-sft": trl.SFT_STYLES,
    "hh": ("standard",),
    "oasst": ("standard",),
    "arena": ("standard",),
}

_MESSAGE_SCHEMAS: dict[tuple[str, str], Schema] = {
    ("trl-preference", "standard"): {"prompt": "string", "chosen": "string", "rejected": "string"},
    ("trl-preference", "conversational"): {"prompt": MESSAGES, "chosen": MESSAGES, "rejected": MESSAGES},
    ("trl-sft", "messages"): {"messages": MESSAGES},
    ("trl-sft", "prompt-completion"): {"prompt": "string", "completion": "string"},
    ("hh", "standard"): {"chosen": "string", "rejected": "string"},
    ("arena", "standard"): {
        "question_id": "string",
        "model_a": "string",
        "model_b": "string",
        "winner": "string",
        "judge": "string",
        "conversation_a": MESSAGES,
        "conversation_b": MESSAGES,
        "turn": "int64",
        "tstamp": "float64",
    },
}


def style_for(format: str, style: str | None) -> str:
    """The style to use, or ValueError naming the ones the format has."""
    styles = STYLES[format]
    if not style:
        return styles[0]
    if style not in styles:
        raise ValueError(f"{format} has the styles {', '.join(styles)}, not {style!r}")
    return style


def schema_for(format: str, style: str) -> Schema | None:
    """Column types for a Hugging Face export; None (inferred) for Open Assistant's nested trees."""
    return _MESSAGE_SCHEMAS.get((format, style))
