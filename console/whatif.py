"""What-if arithmetic for threshold changes: which items a re-curation would decide differently.

Pure functions, no Django: the console's selector loads the stored measurements and hands
them here, and tests call these directly.

Two parts, each built to give the answer the pipeline will give, not an estimate:

* Rules. Every stored decision keeps each rule's measured value and outcome
  (`CurationDecision.rules`). A rule's value does not depend on its threshold, so under new
  limits the outcome is the same comparison rules.py makes, on the stored value; rules whose
  limits do not change keep their stored outcome (the item's reasons). Three thresholds are
  not limits but "apply this rule only to texts with at least N words/lines" gates, and the
  word and line counts behind them are not stored; when one of those changes, or a changed
  rule's measurement was taken under other limits than the current ones, the text is
  evaluated again with rules.evaluate. This assumes the stored outcomes were measured under
  the settings in force, which holds after every change made in the console (it re-curates).
* Near duplicates. A re-curation resets every item to pending and the pipeline decides them
  again in id order: an item joins the cluster of the earliest decided item with the same
  exact hash, or else of the decided item with the highest verified Jaccard among its LSH
  candidates (ties broken as dedup.find_matches breaks them), and the project's
  representative policy decides who represents the merged cluster. simulate_dedup replays
  exactly that from the stored signatures and shingle sets, with the LSH banding the pipeline
  uses at the proposed threshold. It assumes one worker in id order; two workers racing can
  interleave batches, and a changed quality classifier rescores items.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from curation import dedup, rules

# rule name -> (comparison, limit field(s), gate field). A gate field switches the rule off
# ("not applied") for short texts; its count is not stored, so a changed gate means re-evaluating.
RULE_LIMITS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "word_count": ("range", ("min_words", "max_words"), None),
    "mean_word_length": (
        "range",
        ("min_mean_word_length", "max_mean_word_length"),
        "mean_word_length_min_words",
    ),
    "symbol_ratio": ("max", ("max_symbol_ratio",), None),
    "alpha_words": ("min", ("min_alpha_word_ratio",), None),
    "stop_words": ("min", ("min_stop_words",), "stop_words_min_words"),
    "dup_line_fraction": ("max", ("max_dup_line_fraction",), "line_rules_min_lines"),
    "dup_paragraph_fraction": ("max", ("max_dup_paragraph_fraction",), None),
    "top_2gram_coverage": ("max", ("max_top_2gram_coverage",), None),
    "top_3gram_coverage": ("max", ("max_top_3gram_coverage",), None),
    "top_4gram_coverage": ("max", ("max_top_4gram_coverage",), None),
    "bullet_line_ratio": ("max", ("max_bullet_line_ratio",), "line_rules_min_lines"),
    "ellipsis_line_ratio": ("max", ("max_ellipsis_line_ratio",), "line_rules_min_lines"),
    "longest_word": ("max", ("max_word_length",), None),
    "keyboard_mash": ("max", ("max_keyboard_mash_ratio",), None),
}


def _stored_threshold(kind: str, limits: rules.RuleThresholds, names: tuple[str, ...]) -> Any:
    values = [getattr(limits, name) for name in names]
    return values if kind == "range" else values[0]


def _same(a: Any, b: Any) -> bool:
    if a == b:
        return True
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return a is b
    return float(a) == float(b)


def rule_outcome(
    stored: Mapping[str, Any], proposed: rules.RuleThresholds, measured_with: rules.RuleThresholds
) -> bool | None:
    """Whether a stored rule measurement passes under `proposed` limits, or None when the stored
    numbers cannot say (then the text must be evaluated again)."""
    spec = RULE_LIMITS.get(str(stored.get("name")))
    if spec is None:
        return None
    comparison, names, gate = spec
    if not _same(stored.get("threshold"), _stored_threshold(comparison, measured_with, names)):
        # Measured under other limits than the settings in force: its gate may differ too.
        return None
    message = str(stored.get("message", ""))
    if gate is not None:
        if getattr(proposed, gate) != getattr(measured_with, gate):
            return None
        if message == "rule off":
            # Rules that are off skip their gate check, so whether it would apply is unknown.
            return None
    if message.startswith("not applied"):
        return True
    value = float(stored["value"])
    if comparison == "range":
        low, high = (getattr(proposed, name) for name in names)
        return (low is None or value >= low) and (high is None or value <= high)
    limit = getattr(proposed, names[0])
    if limit is None:
        return True
    return value <= limit if comparison == "max" else value >= limit


def affected_rules(proposed: rules.RuleThresholds, measured_with: rules.RuleThresholds) -> frozenset[str]:
    """The rules whose outcome can change between two sets of limits: those with a changed limit
    or gate. Every other rule keeps the outcome stored with the item."""
    changed = set(changed_fields(proposed, measured_with))
    return frozenset(
        name
        for name, (_, limits, gate) in RULE_LIMITS.items()
        if changed & set(limits) or (gate is not None and gate in changed)
    )


def failing_rules(
    stored_failing: frozenset[str],
    stored_rules: Mapping[str, Mapping[str, Any]],
    proposed: rules.RuleThresholds,
    measured_with: rules.RuleThresholds,
    evaluate: Callable[[], list[rules.RuleResult]],
    affected: frozenset[str] | None = None,
) -> tuple[frozenset[str], bool]:
    """The rules that fail under `proposed`, and whether the text had to be evaluated again.

    `stored_failing` names the rules that failed when the item was measured (its reasons);
    `stored_rules` holds, by name, the stored measurements of at least the affected rules.
    `affected` is affected_rules(proposed, measured_with), passed in when it is known.
    """
    if affected is None:
        affected = affected_rules(proposed, measured_with)
    if not affected:
        return stored_failing, False
    outcomes = {
        name: rule_outcome(stored_rules[name], proposed, measured_with) if name in stored_rules else None
        for name in affected
    }
    if any(ok is None for ok in outcomes.values()):
        return frozenset(rules.failed_rules(evaluate())), True
    return frozenset((stored_failing - affected) | {name for name, ok in outcomes.items() if not ok}), False


# Where each rule's result sits in a stored measurement list: rules.evaluate returns one result
# per rule, always in the same order, so a query can fetch just the entries it needs.
RULE_POSITIONS = {result.name: i for i, result in enumerate(rules.evaluate("order of the rules", None))}


# --- Near duplicates -------------------------------------------------------------------------


@dataclass(frozen=True)
class DedupItem:
    id: int
    kind: str
    exact_hash: str
    hashvalues: npt.NDArray[np.uint32]  # the MinHash signature's values
    quality: float | None


@dataclass(frozen=True)
class DupOutcome:
    representative: int
    rule: str  # "" for a representative, else "exact_duplicate" or "near_duplicate"


def _quality_key(item: DedupItem) -> tuple[float, int]:
    # curation.services._quality_key: higher score first, then the lower id.
    return (-(item.quality if item.quality is not None else -1.0), item.id)


def _band_pairs(band_hashes: npt.NDArray[np.uint64]) -> set[tuple[int, int]]:
    """Every pair (i < j) of rows sharing at least one band hash: the LSH candidates."""
    pairs: set[tuple[int, int]] = set()
    for band in range(band_hashes.shape[1]):
        column = band_hashes[:, band]
        order = np.argsort(column, kind="stable")
        ordered = column[order]
        same = ordered[1:] == ordered[:-1]
        if not same.any():
            continue
        boundaries = np.flatnonzero(np.concatenate(([True], ~same, [True])))
        starts, stops = boundaries[:-1], boundaries[1:]
        shared = (stops - starts) >= 2
        for start, stop in zip(starts[shared].tolist(), stops[shared].tolist(), strict=True):
            members = sorted(order[start:stop].tolist())
            for a in range(len(members)):
                for b in range(a + 1, len(members)):
                    pairs.add((members[a], members[b]))
    return pairs


def simulate_dedup(
    items: Sequence[DedupItem],
    *,
    threshold: float,
    policy: str,
    shingles_of: Callable[[list[int]], Mapping[int, npt.NDArray[np.uint64]]],
    num_perm: int = dedup.DEFAULT_NUM_PERM,
) -> dict[int, DupOutcome]:
    """Replay the pipeline's cluster decisions for a full re-curation (see the module docstring).

    `shingles_of` loads stored shingle sets for the ids it is given; it is called once per
    kind, for the items that are LSH candidates of one another, so a project of mostly unique
    texts loads few of them.
    """
    params = dedup.choose_lsh_params(num_perm, threshold)
    result: dict[int, DupOutcome] = {}
    by_kind: dict[str, list[DedupItem]] = defaultdict(list)
    for item in items:
        by_kind[item.kind].append(item)
    for kind_items in by_kind.values():
        kind_items.sort(key=lambda i: i.id)
        result.update(_simulate_kind(kind_items, threshold, policy, shingles_of, params))
    return result


def _simulate_kind(
    kind_items: list[DedupItem],
    threshold: float,
    policy: str,
    shingles_of: Callable[[list[int]], Mapping[int, npt.NDArray[np.uint64]]],
    params: tuple[int, int],
) -> dict[int, DupOutcome]:
    # Only the first item with each exact hash ever reaches the LSH step; later ones join it.
    first_of_hash: dict[str, int] = {}
    head_of: dict[int, int] = {}
    twins: dict[int, list[int]] = defaultdict(list)
    heads: list[DedupItem] = []
    for item in kind_items:
        head = first_of_hash.get(item.exact_hash) if item.exact_hash else None
        if head is None:
            heads.append(item)
            if item.exact_hash:
                first_of_hash[item.exact_hash] = item.id
        else:
            head_of[item.id] = head
            twins[head].append(item.id)

    neighbours: dict[int, list[int]] = defaultdict(list)
    jaccards: dict[tuple[int, int], float] = {}
    if len(heads) > 1:
        band_hashes = dedup.lsh_band_hashes(np.stack([h.hashvalues for h in heads]), *params)
        pairs = _band_pairs(band_hashes)
        if pairs:
            stored = shingles_of(sorted({heads[i].id for pair in pairs for i in pair}))
            for a, b in pairs:
                left, right = heads[a].id, heads[b].id
                if left not in stored or right not in stored:
                    continue
                score = dedup.jaccard(stored[left], stored[right])
                if score >= threshold:
                    neighbours[left].append(right)
                    neighbours[right].append(left)
                    jaccards[(left, right)] = jaccards[(right, left)] = score

    by_id = {i.id: i for i in kind_items}
    representative: dict[int, int] = {}
    members: dict[int, set[int]] = defaultdict(set)
    rule_of: dict[int, str] = {}

    def join(newcomer: DedupItem, rep_id: int, rule: str) -> None:
        # curation.services._join_cluster: the policy decides whether the newcomer takes over.
        rep = by_id[rep_id]
        wins = _quality_key(newcomer) < _quality_key(rep) if policy == "quality" else newcomer.id < rep.id
        if not wins:
            representative[newcomer.id] = rep_id
            members[rep_id].add(newcomer.id)
            rule_of[newcomer.id] = rule
            return
        moved = members.pop(rep_id, set()) | {rep_id}
        representative[newcomer.id] = newcomer.id
        rule_of[newcomer.id] = ""
        for member in moved:
            representative[member] = newcomer.id
            rule_of[member] = rule
        members[newcomer.id] = moved

    for item in kind_items:
        head = head_of.get(item.id)
        if head is not None:
            join(item, representative[head], "exact_duplicate")
            continue
        # Decided neighbours, and their exact twins: the pipeline's index holds those too, with
        # the same shingles and so the same score.
        candidates = [
            (key, jaccards[(item.id, n)])
            for n in neighbours.get(item.id, [])
            if n < item.id
            for key in (n, *twins.get(n, []))
            if key < item.id
        ]
        if candidates:
            best = min(candidates, key=lambda ks: (-ks[1], repr(ks[0])))[0]
            join(item, representative[best], "near_duplicate")
        else:
            representative[item.id] = item.id
            rule_of[item.id] = ""
    return {
        item.id: DupOutcome(representative=representative[item.id], rule=rule_of[item.id])
        for item in kind_items
    }


# --- The preview -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One stored decision, as the preview needs it."""

    id: int
    kind: str
    status: str
    override_status: str
    quality: float | None
    failing: frozenset[str]  # the rules that failed when it was measured
    rules: Mapping[str, Mapping[str, Any]]  # stored measurements by rule name (those fetched)
    is_duplicate: bool


@dataclass
class RuleChange:
    name: str
    newly_failing: int = 0
    newly_passing: int = 0
    status_changes: int = 0
    examples: list[int] = field(default_factory=list)


@dataclass
class Preview:
    items: int = 0
    changed: int = 0
    transitions: dict[tuple[str, str], int] = field(default_factory=dict)
    rules: dict[str, RuleChange] = field(default_factory=dict)
    reevaluated: int = 0
    new_status: dict[int, str] = field(default_factory=dict)

    def rule(self, name: str) -> RuleChange:
        if name not in self.rules:
            self.rules[name] = RuleChange(name)
        return self.rules[name]


EXAMPLES_PER_RULE = 3


def preview(
    items: Sequence[Item],
    *,
    proposed: Mapping[str, rules.RuleThresholds],
    current: Mapping[str, rules.RuleThresholds],
    duplicates: Mapping[int, DupOutcome],
    evaluate: Callable[[Item, rules.RuleThresholds], list[rules.RuleResult]],
    final_status: Callable[[str, bool, bool, float | None], str],
) -> Preview:
    """The status each item would get, what changes, and which rule each change comes from.

    `final_status(override_status, fails_a_rule, is_duplicate, quality)` is the pipeline's
    own verdict function; `evaluate(item, limits)` re-measures one text.
    """
    out = Preview(items=len(items))
    affected = {kind: affected_rules(proposed[kind], current[kind]) for kind in proposed}
    for item in items:
        limits, before_limits = proposed[item.kind], current[item.kind]
        failing, reevaluated = failing_rules(
            item.failing,
            item.rules,
            limits,
            before_limits,
            partial(evaluate, item, limits),
            affected=affected[item.kind],
        )
        out.reevaluated += int(reevaluated)
        dup = duplicates.get(item.id)
        is_duplicate = bool(dup and dup.rule)
        status = final_status(item.override_status, bool(failing), is_duplicate, item.quality)
        out.new_status[item.id] = status
        if status == item.status:
            continue
        out.changed += 1
        key = (item.status, status)
        out.transitions[key] = out.transitions.get(key, 0) + 1
        was_failing = item.failing
        causes = [(name, True) for name in sorted(failing - was_failing)]
        causes += [(name, False) for name in sorted(was_failing - failing)]
        if is_duplicate != item.is_duplicate:
            causes.append(((dup.rule if dup and dup.rule else "near_duplicate"), is_duplicate))
        if not causes:
            # Nothing we can name: a first decision, or a cluster the pipeline forms differently
            # from the stored one (after a curator moved a representative, for instance).
            causes.append(
                ("first decision" if item.status == "pending" else "re-measured", status == "rejected")
            )
        for name, failing_now in causes:
            change = out.rule(name)
            change.status_changes += 1
            if failing_now:
                change.newly_failing += 1
            else:
                change.newly_passing += 1
            if len(change.examples) < EXAMPLES_PER_RULE:
                change.examples.append(item.id)
    return out


def thresholds_with(kind: str, overrides: Mapping[str, Any] | None) -> rules.RuleThresholds:
    return rules.thresholds_for(kind, overrides or {})  # type: ignore[arg-type]


def changed_fields(a: rules.RuleThresholds, b: rules.RuleThresholds) -> list[str]:
    return [f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)]
