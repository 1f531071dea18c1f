"""Open Assistant message trees (OpenAssistant/oasst1 and oasst2, *.trees.jsonl).

One tree per line: {"message_tree_id", "prompt": message}, each message {"message_id", "role"
("prompter" or "assistant"), "text", "rank", "replies": [message, ...]}. Volunteers ranked
sibling assistant replies, rank 0 the best.

Reading: every prompter message with two or more ranked assistant replies becomes one
RankedReplies, its prompt the whole conversation from the root down to it, so a comparison
deep in a tree keeps its context. Writing: `build_trees` merges prompts that share their
opening turns back into trees, and numbers each prompt's replies by a score (best 0).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from interop.formats.common import BadRecord, LineError, RankedReplies, Reply, dumps, id_field, json_lines
from interop.formats.conversation import Turn, parse_prompt, render_prompt

_ROLE = {"prompter": "user", "assistant": "assistant"}
_OASST_ROLE = {"user": "prompter", "assistant": "assistant", "system": "prompter"}


def _message(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRecord(f"{where} must be an object")
    if value.get("role") not in _ROLE:
        raise BadRecord(f"{where}.role must be prompter or assistant")
    if not isinstance(value.get("text"), str) or not value["text"].strip():
        raise BadRecord(f"{where}.text must be a non-empty string")
    id_field(value, "message_id")
    if not isinstance(value.get("replies", []), list):
        raise BadRecord(f"{where}.replies must be a list")
    return value


def _rank(value: Any) -> int | None:
    rank = value.get("rank")
    if rank is None:
        return None
    if isinstance(rank, bool) or not isinstance(rank, int | float) or rank != int(rank) or rank < 0:
        raise BadRecord(f"message {value.get('message_id')}: rank must be a whole number from 0")
    return int(rank)


def _groups(tree_id: str, root: dict[str, Any]) -> Iterator[RankedReplies | LineError]:
    # Depth first with an explicit stack: trees can be deep, and a bad subtree costs only itself.
    stack: list[tuple[Any, str, list[Turn]]] = [(root, "prompt", [])]
    while stack:
        raw, where, path = stack.pop()
        try:
            message = _message(raw, where)
        except BadRecord as exc:
            yield LineError(str(exc))
            continue
        if message.get("deleted"):
            continue
        turns = [*path, Turn(_ROLE[message["role"]], message["text"])]
        replies = message.get("replies", [])
        for index in range(len(replies) - 1, -1, -1):
            stack.append((replies[index], f"message {message['message_id']} reply {index}", turns))
        if message["role"] != "prompter":
            continue
        ranked: list[Reply] = []
        try:
            for reply in replies:
                if not isinstance(reply, dict) or reply.get("role") != "assistant" or reply.get("deleted"):
                    continue
                rank = _rank(reply)
                if rank is None or not isinstance(reply.get("text"), str) or not reply["text"].strip():
                    continue
                model = reply.get("model_name") if reply.get("synthetic") else ""
                ranked.append(
                    Reply(
                        message_id=id_field(reply, "message_id"),
                        text=reply["text"],
                        rank=rank,
                        model_name=model if isinstance(model, str) else "",
                    )
                )
        except BadRecord as exc:
            yield LineError(str(exc))
            continue
        if len(ranked) >= 2:
            ranked.sort(key=lambda r: (r.rank, r.message_id))
            yield RankedReplies(
                tree_id=tree_id,
                prompt_id=id_field(message, "message_id"),
                prompt=render_prompt(turns),
                replies=tuple(ranked),
            )


def parse_trees(lines: Iterable[bytes | str]) -> Iterator[tuple[int, RankedReplies | LineError]]:
    """One line is one tree and may yield many records (and many errors), all numbered with it."""
    for number, record in json_lines(lines):
        if isinstance(record, LineError):
            yield number, record
            continue
        try:
            root = _message(record.get("prompt"), "prompt")
            tree_id = id_field(record, "message_tree_id", required=False) or id_field(root, "message_id")
        except BadRecord as exc:
            yield number, LineError(str(exc))
            continue
        for item in _groups(tree_id, root):
            yield number, item


# --- Writing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredReply:
    message_id: str  # "" when the response has no Open Assistant id: one is derived from content
    text: str
    score: float


@dataclass(frozen=True)
class PromptGroup:
    """A prompt and its judged responses, scored (higher is better) by the caller."""

    message_id: str
    prompt: str
    replies: tuple[ScoredReply, ...]


@dataclass
class _Node:
    role: str
    text: str
    message_id: str
    rank: int | None = None
    children: dict[tuple[str, str], _Node] = field(default_factory=dict)


def derived_id(*parts: str) -> str:
    """An id for a message Flywheel has no id for, fixed by its place in the conversation."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"flywheel-{digest}"


def build_trees(groups: Iterable[PromptGroup]) -> list[dict[str, Any]]:
    """Merge prompts into trees by their shared opening turns and rank each prompt's replies:
    the highest score gets rank 0; equal scores keep the order they came in."""
    roots: dict[tuple[str, str], _Node] = {}
    for group in groups:
        turns = parse_prompt(group.prompt)
        level, node, path = roots, None, []
        for depth, turn in enumerate(turns):
            role = "user" if turn.role == "system" else turn.role
            key = (role, turn.content)
            path.append(f"{role}:{turn.content}")
            if key not in level:
                last = depth == len(turns) - 1
                given = group.message_id if last else ""
                level[key] = _Node(role, turn.content, given or derived_id(*path))
            node = level[key]
            if depth == len(turns) - 1 and group.message_id:
                node.message_id = group.message_id
            level = node.children
        assert node is not None
        ordered = sorted(enumerate(group.replies), key=lambda item: (-item[1].score, item[0]))
        for rank, (_, reply) in enumerate(ordered):
            key = ("assistant", reply.text)
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = _Node(
                    "assistant", reply.text, reply.message_id or derived_id(*path, f"assistant:{reply.text}")
                )
            elif reply.message_id:
                child.message_id = reply.message_id
            child.rank = rank
    return [
        {
            "message_tree_id": root.message_id,
            "tree_state": "ready_for_export",
            "prompt": _as_message(root, None),
        }
        for root in roots.values()
    ]


def _as_message(node: _Node, parent_id: str | None) -> dict[str, Any]:
    children = sorted(
        node.children.values(), key=lambda c: (c.rank is None, c.rank if c.rank is not None else 0)
    )
    return {
        "message_id": node.message_id,
        "parent_id": parent_id,
        "role": _OASST_ROLE[node.role],
        "text": node.text,
        "rank": node.rank,
        "replies": [_as_message(child, node.message_id) for child in children],
    }


def dump_trees(trees: Iterable[dict[str, Any]]) -> Iterator[str]:
    for tree in trees:
        yield dumps(tree)
