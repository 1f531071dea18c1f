"""How a conversation lives in Flywheel's flat text columns.

A prompt is one text. A single user message is stored as itself. A longer context (a system
message, earlier turns) is stored as a transcript in the Anthropic HH style, without the
leading blank line:

    Human: What is a monad?

    Assistant: A monoid in the category of endofunctors.

    Human: Say it simply.

A response is the assistant's answer. Where a source continues the conversation past the
first answer (multi-turn Arena battles, HH pairs that part ways early), the response is the
answer followed by the later turns in the same style ("...\\n\\nHuman: ...\\n\\nAssistant: ...").

render(parse(text)) == text for every text, so a round trip through any format that carries
messages returns the same bytes; only the split into turns can differ when a message itself
contains a "\\n\\nHuman: " line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from interop.formats.common import BadRecord

ROLES = ("system", "user", "assistant")
LABELS = {"system": "System", "user": "Human", "assistant": "Assistant"}
_ROLE_OF = {label: role for role, label in LABELS.items()}
_MARKER = re.compile(r"\n\n(System|Human|Assistant): ")


@dataclass(frozen=True)
class Turn:
    role: str
    content: str


def _split(text: str) -> list[Turn]:
    """Split text that begins with a marker into turns (what comes before the first marker,
    nothing for such text, is dropped)."""
    parts = _MARKER.split(text)
    return [Turn(_ROLE_OF[parts[i]], parts[i + 1]) for i in range(1, len(parts), 2)]


def render_prompt(turns: list[Turn]) -> str:
    if len(turns) == 1 and turns[0].role == "user":
        return turns[0].content
    return "\n\n".join(f"{LABELS[turn.role]}: {turn.content}" for turn in turns)


def parse_prompt(text: str) -> list[Turn]:
    if text.startswith(("Human: ", "System: ")):
        turns = _split("\n\n" + text)
        if len(turns) >= 2:
            return turns
    return [Turn("user", text)]


def render_response(turns: list[Turn]) -> str:
    """The first turn is the assistant's answer; any later turns follow it, labelled."""
    return turns[0].content + "".join(f"\n\n{LABELS[turn.role]}: {turn.content}" for turn in turns[1:])


def parse_response(text: str) -> list[Turn]:
    parts = _MARKER.split(text)
    return [Turn("assistant", parts[0])] + [
        Turn(_ROLE_OF[parts[i]], parts[i + 1]) for i in range(1, len(parts), 2)
    ]


def transcript(turns: list[Turn]) -> str:
    """Anthropic HH form: every turn introduced by a blank line and its label."""
    return "".join(f"\n\n{LABELS[turn.role]}: {turn.content}" for turn in turns)


def messages_to_turns(value: Any, *, field: str) -> list[Turn]:
    """[{"role": ..., "content": ...}, ...] as used by TRL, Arena and chat templates."""
    if not isinstance(value, list) or not value:
        raise BadRecord(f"{field} must be a non-empty list of messages")
    turns = []
    for index, message in enumerate(value):
        if not isinstance(message, dict):
            raise BadRecord(f"{field}[{index}] must be an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise BadRecord(f"{field}[{index}].role must be one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise BadRecord(f"{field}[{index}].content must be a string")
        turns.append(Turn(role, content))
    return turns


def turns_to_messages(turns: list[Turn]) -> list[dict[str, str]]:
    return [{"role": turn.role, "content": turn.content} for turn in turns]


def check_context(turns: list[Turn], *, field: str) -> None:
    """A prompt context must end with the user speaking."""
    if not turns or turns[-1].role != "user":
        raise BadRecord(f"{field} must end with a user message")


def check_answer(turns: list[Turn], *, field: str) -> None:
    if not turns or turns[0].role != "assistant":
        raise BadRecord(f"{field} must start with an assistant message")
    if not turns[0].content.strip():
        raise BadRecord(f"{field} has an empty assistant message")
