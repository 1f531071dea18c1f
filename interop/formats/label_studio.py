"""Label Studio's side of the sync as plain data: labeling configs, task payloads, and what an
annotation's result means. The network calls live in interop/label_studio.py."""

from __future__ import annotations

import hashlib
from typing import Any

from interop.formats.common import BadRecord

PREFERENCE = "preference"
RATIONALE = "rationale"
ANSWER = "answer"

# Pairwise over the two responses, and a box for why. Label Studio's Pairwise tag has no tie:
# a person who cannot choose cancels (skips) the task, which comes back as a skip.
COMPARISON_CONFIG = f"""<View>
  <Header value="Prompt"/>
  <Text name="prompt" value="$prompt"/>
  <Header value="Which response is better? Click it."/>
  <Pairwise name="{PREFERENCE}" toName="left,right" selectionStyle="outline: 3px solid #2563eb;"/>
  <View style="display: grid; grid-template-columns: 1fr 1fr; column-gap: 1em;">
    <Text name="left" value="$left"/>
    <Text name="right" value="$right"/>
  </View>
  <Header value="Why? (optional)"/>
  <TextArea name="{RATIONALE}" toName="prompt" rows="3" maxSubmissions="1" editable="true"/>
</View>"""

DEMONSTRATION_CONFIG = f"""<View>
  <Header value="Write the ideal answer to this prompt."/>
  <Text name="prompt" value="$prompt"/>
  <TextArea name="{ANSWER}" toName="prompt" rows="10" maxSubmissions="1" editable="true" required="true"/>
</View>"""


def left_side_for(task_id: int) -> str:
    """Which response goes on the left: fixed per task, half of all tasks each way, so Label
    Studio's fixed layout cannot favour A or B across the project."""
    return "a" if hashlib.sha256(f"flywheel-task-{task_id}".encode()).digest()[0] % 2 == 0 else "b"


def comparison_payload(
    *,
    task_id: int,
    prompt: str,
    response_a: str,
    response_b: str,
    left_side: str,
    p_a: float | None = None,
    model_version: str = "",
) -> dict[str, Any]:
    """A Label Studio task for a comparison; with p_a (the reward model's P(A is better)),
    a prediction Label Studio shows as a pre-annotation."""
    left, right = (response_a, response_b) if left_side == "a" else (response_b, response_a)
    payload: dict[str, Any] = {
        "data": {
            "prompt": prompt,
            "left": left,
            "right": right,
            "flywheel_task_id": task_id,
            "flywheel_left": left_side,
        }
    }
    if p_a is not None:
        p_left = p_a if left_side == "a" else 1 - p_a
        payload["predictions"] = [
            {
                "model_version": model_version or "reward-model",
                "score": round(max(p_left, 1 - p_left), 4),
                "result": [
                    {
                        "from_name": PREFERENCE,
                        "to_name": PREFERENCE,
                        "type": "pairwise",
                        "value": {"selected": "left" if p_left >= 0.5 else "right"},
                    }
                ],
            }
        ]
    return payload


def demonstration_payload(*, prompt_id: int, prompt: str) -> dict[str, Any]:
    return {"data": {"prompt": prompt, "flywheel_prompt_id": prompt_id}}


_SIDES = {"left": "left", "right": "right", "a": "a", "b": "b"}


def _ranked_first(value: dict[str, Any]) -> str:
    """Ranker results: {"ranker": {"<list or bucket>": [item ids in order], ...}}. The first of
    our items in reading order wins; Label Studio's internal "_" column holds unranked items."""
    ranker = value.get("ranker")
    if not isinstance(ranker, dict):
        raise BadRecord("ranker result has no ranker object")
    for column, items in ranker.items():
        if column == "_" or not isinstance(items, list):
            continue
        for item in items:
            if isinstance(item, str) and item.lower() in _SIDES:
                return _SIDES[item.lower()]
    raise BadRecord("ranker result ranks neither left/right nor a/b")


def comparison_choice(result: Any, *, left_side: str) -> tuple[str, str]:
    """(choice, rationale) from a comparison annotation's result list. Accepts the Pairwise
    shape {"selected": "left" | "right"} and the Ranker shape; raises BadRecord otherwise."""
    if not isinstance(result, list):
        raise BadRecord("result is not a list")
    picked = ""
    rationale: list[str] = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            continue
        value = item["value"]
        if "selected" in value:
            selected = value["selected"]
            if selected not in ("left", "right"):
                raise BadRecord(f"pairwise selected is {selected!r}, not left or right")
            picked = selected
        elif "ranker" in value:
            picked = _ranked_first(value)
        elif item.get("from_name") == RATIONALE or item.get("type") == "textarea":
            texts = value.get("text")
            if isinstance(texts, list):
                rationale.extend(t for t in texts if isinstance(t, str))
            elif isinstance(texts, str):
                rationale.append(texts)
    if not picked:
        raise BadRecord("no pairwise or ranker choice in the result")
    if picked in ("a", "b"):
        choice = picked
    else:
        right_side = "b" if left_side == "a" else "a"
        choice = left_side if picked == "left" else right_side
    return choice, "\n".join(rationale)


def demonstration_text(result: Any) -> str:
    if not isinstance(result, list):
        raise BadRecord("result is not a list")
    texts: list[str] = []
    for item in result:
        if isinstance(item, dict) and isinstance(item.get("value"), dict):
            value = item["value"].get("text")
            if isinstance(value, list):
                texts.extend(t for t in value if isinstance(t, str))
            elif isinstance(value, str):
                texts.append(value)
    text = "\n".join(texts)
    if not text.strip():
        raise BadRecord("the answer is empty")
    return text
