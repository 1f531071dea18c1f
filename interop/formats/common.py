"""Records every format reads into and writes from, line errors, and JSON Lines plumbing."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LineError:
    """Why one line (or one part of a line) could not be read."""

    reason: str


class BadRecord(Exception):
    """Raised inside a parser for a record it cannot use; the parser turns it into a LineError."""


@dataclass(frozen=True)
class Preference:
    """One prompt, a better and a worse response. `prompt` is Flywheel's prompt text: the user's
    message, or for a multi-turn context a transcript (see conversation.py)."""

    prompt: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class Demonstration:
    """A prompt and its ideal answer (supervised fine-tuning data)."""

    prompt: str
    completion: str


@dataclass(frozen=True)
class Battle:
    """One Chatbot Arena vote. `winner` is a Flywheel choice: a, b, tie or both_bad."""

    question_id: str
    model_a: str
    model_b: str
    winner: str
    judge: str
    prompt: str
    response_a: str
    response_b: str
    tstamp: float | None = None


@dataclass(frozen=True)
class Reply:
    message_id: str
    text: str
    rank: int
    model_name: str = ""


@dataclass(frozen=True)
class RankedReplies:
    """A prompter message of an Open Assistant tree and its ranked assistant replies, best first.
    `prompt` holds the whole conversation down to that message."""

    tree_id: str
    prompt_id: str
    prompt: str
    replies: tuple[Reply, ...]


def json_lines(lines: Iterable[bytes | str]) -> Iterator[tuple[int, dict[str, Any] | LineError]]:
    """Decode JSON Lines one line at a time, numbering from 1. Blank lines are skipped."""
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, LineError(f"not valid UTF-8 ({exc.reason})")
                continue
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield number, LineError(f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        except RecursionError:
            yield number, LineError("invalid JSON: nested too deeply")
            continue
        if not isinstance(record, dict):
            yield number, LineError("each line must be a JSON object")
            continue
        yield number, record


def dumps(row: dict[str, Any]) -> str:
    """One JSON Lines line. Key order is the caller's, so the same rows give the same bytes."""
    return json.dumps(row, ensure_ascii=False) + "\n"


def text_field(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None:
        raise BadRecord(f"{name} is required")
    if not isinstance(value, str):
        raise BadRecord(f"{name} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise BadRecord(f"{name} is empty")
    return value


def id_field(record: dict[str, Any], name: str, *, required: bool = True) -> str:
    """An identifier from the source: a string, or a whole number written as one."""
    value = record.get(name)
    if value is None or value == "":
        if required:
            raise BadRecord(f"{name} is required")
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise BadRecord(f"{name} must be a string or a whole number")
    if len(value) > 150:
        raise BadRecord(f"{name} is longer than 150 characters")
    return value
