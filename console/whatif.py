"""What-if arithmetic for threshold changes: which items a re-curation would decide differently.

Pure functions, no Django: the console's selector (console/selectors.py) turns the rule part
into one SQL aggregate over stored measurements and hands the duplicate part the stored
sketches; tests call both directly.

Both parts give the answer the pipeline will give, not an estimate:

* Rules. The pipeline stores every rule's measured value and the counts its gates read
  (curation.models.Measurement); none of them depends on a limit. `failure` says, from
  RULES, when a rule fails under given limits as comparisons of those stored numbers, which
  is what curation.rules.judge decides from the same numbers. A gate change ("apply this rule
  only from N words") is a comparison like any other, so no text is ever measured again.
* Near duplicates. A re-curation resets every item to pending and the pipeline decides them
  again in id order: an item joins the cluster of the earliest decided item with the same
  exact hash, or else the clusters of all the decided items among its LSH candidates that
  verify, merged into one, and the project's representative policy decides who represents
  the merged cluster. replay_duplicates replays
  exactly that with the LSH banding the pipeline uses at the proposed threshold. It bands the
  stored 16-bit sketches of the signatures, which finds every LSH candidate pair and a few
  more, and then keeps the pairs whose full signatures share a band and whose shingle sets
  reach the threshold: the full data is read only for the items that have a candidate at all.
  An item near several clusters merges them, so the clusters do not depend on the order the
  items are decided in (two workers racing interleave batches); a changed quality classifier
  rescores items.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from curation import dedup, rules

# --- Rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    """How curation.rules.judge decides one rule: "range" fails below the first limit or above
    the second, "max" above its limit, "min" below it; a limit of None is no bound. `gate` is
    (count, minimum): below that many (words, lines, paragraphs) the rule is not applied. The
    minimum names a RuleThresholds field, or is fixed."""

    comparison: str
    limits: tuple[str, ...]
    gate: tuple[str, str | int] | None = None


_LINES_GATE = ("lines", "line_rules_min_lines")

RULES: dict[str, RuleSpec] = {
    "word_count": RuleSpec("range", ("min_words", "max_words")),
    "mean_word_length": RuleSpec(
        "range",
        ("min_mean_word_length", "max_mean_word_length"),
        ("prose_words", "mean_word_length_min_words"),
    ),
    "symbol_ratio": RuleSpec("max", ("max_symbol_ratio",)),
    "alpha_words": RuleSpec("min", ("min_alpha_word_ratio",)),
    "stop_words": RuleSpec("min", ("min_stop_words",), ("prose_words", "stop_words_min_words")),
    "dup_line_fraction": RuleSpec("max", ("max_dup_line_fraction",), _LINES_GATE),
    "dup_paragraph_fraction": RuleSpec("max", ("max_dup_paragraph_fraction",), ("paragraphs", 2)),
    "top_2gram_coverage": RuleSpec("max", ("max_top_2gram_coverage",)),
    "top_3gram_coverage": RuleSpec("max", ("max_top_3gram_coverage",)),
    "top_4gram_coverage": RuleSpec("max", ("max_top_4gram_coverage",)),
    "bullet_line_ratio": RuleSpec("max", ("max_bullet_line_ratio",), _LINES_GATE),
    "ellipsis_line_ratio": RuleSpec("max", ("max_ellipsis_line_ratio",), _LINES_GATE),
    "longest_word": RuleSpec("max", ("max_word_length",)),
    "keyboard_mash": RuleSpec("max", ("max_keyboard_mash_ratio",)),
}


@dataclass(frozen=True)
class Failure:
    """A rule fails when its value is below `below` or above `above` (None: no such bound)
    and, with a gate, the gate's count is at least its minimum."""

    rule: str
    below: float | None
    above: float | None
    gate: tuple[str, int] | None

    def holds(self, values: Mapping[str, float]) -> bool:
        """Whether an item with these stored numbers (rule values and gate counts, by column
        name) fails the rule."""
        if self.gate is not None and values[self.gate[0]] < self.gate[1]:
            return False
        value = values[self.rule]
        return (self.below is not None and value < self.below) or (
            self.above is not None and value > self.above
        )


def failure(name: str, limits: rules.RuleThresholds) -> Failure | None:
    """When rule `name` fails under `limits`, or None when it cannot (its limits are off)."""
    spec = RULES[name]
    bounds = [getattr(limits, field) for field in spec.limits]
    if spec.comparison == "range":
        below, above = bounds
    elif spec.comparison == "max":
        below, above = None, bounds[0]
    else:
        below, above = bounds[0], None
    if below is None and above is None:
        return None
    gate = None
    if spec.gate is not None:
        count, minimum = spec.gate
        gate = (count, minimum if isinstance(minimum, int) else int(getattr(limits, minimum)))
    return Failure(rule=name, below=below, above=above, gate=gate)


def affected_rules(proposed: rules.RuleThresholds, current: rules.RuleThresholds) -> list[str]:
    """The rules whose verdict can differ between two sets of limits, in RULES order."""
    return [name for name in RULES if failure(name, proposed) != failure(name, current)]


def thresholds_with(kind: str, overrides: Mapping[str, Any] | None) -> rules.RuleThresholds:
    return rules.thresholds_for(kind, overrides or {})  # type: ignore[arg-type]


def changed_fields(a: rules.RuleThresholds, b: rules.RuleThresholds) -> list[str]:
    return [f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)]


# --- Near duplicates -------------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """What the replay reads for an item that has an exact twin or a candidate: the exact hash
    and quality score for the first, and also the full signature and shingles for the second."""

    exact_hash: str
    quality: float | None
    hashvalues: npt.NDArray[np.uint32] | None = None  # the full MinHash signature's values
    shingles: npt.NDArray[np.uint64] | None = None


@dataclass(frozen=True)
class DupOutcome:
    representative: int
    rule: str  # "" for a representative, else "exact_duplicate" or "near_duplicate"


def _quality_key(pk: int, quality: float | None) -> tuple[float, int]:
    # curation.services._quality_key: higher score first, then the lower id.
    return (-(quality if quality is not None else -1.0), pk)


_BUCKET_BITS = 20
_MIX = np.uint64(0x9E3779B97F4A7C15)


def band_pairs(columns: npt.NDArray[Any], bands: int, rows: int) -> npt.NDArray[np.int64]:
    """Every pair (i < j) of items that agree on all values of at least one band, as an (n, 2)
    array. `columns[p]` holds value p of every item's signature (or sketch), so a band's
    values lie side by side in memory; band k is values k * rows to (k + 1) * rows - 1.

    Each band is reduced to a 64-bit key first; unequal bands can share a key, which only adds
    a pair for the caller to check and drop.
    """
    count = columns.shape[1]
    codes: list[npt.NDArray[np.int64]] = []
    for band in range(bands):
        keys = np.zeros(count, dtype=np.uint64)
        for value in columns[band * rows : (band + 1) * rows]:
            keys *= _MIX
            keys += value
        # Sorting 100,000 keys for each band was most of the replay. Counting them into a
        # million buckets first leaves to sort only the rows whose bucket is shared: the
        # duplicates, and a few unrelated rows that landed together.
        buckets = ((keys * _MIX) >> np.uint64(64 - _BUCKET_BITS)).astype(np.intp)
        shared = np.flatnonzero(np.bincount(buckets, minlength=1 << _BUCKET_BITS)[buckets] >= 2)
        if len(shared) < 2:
            continue
        order = shared[np.argsort(keys[shared])].astype(np.int64)
        ordered = keys[order]
        same = ordered[1:] == ordered[:-1]
        if not same.any():
            continue
        starts = np.flatnonzero(np.concatenate(([True], ~same)))
        lengths = np.diff(np.append(starts, len(order)))
        # Most shared buckets hold two rows: pair those without a Python loop.
        twos = starts[lengths == 2]
        left, right = order[twos], order[twos + 1]
        codes.append(np.minimum(left, right) * count + np.maximum(left, right))
        for start, length in zip(starts[lengths > 2].tolist(), lengths[lengths > 2].tolist(), strict=True):
            members = np.sort(order[start : start + length])
            first, second = np.triu_indices(length, 1)
            codes.append(members[first] * count + members[second])
    if not codes:
        return np.empty((0, 2), dtype=np.int64)
    unique = np.unique(np.concatenate(codes))
    return np.stack([unique // count, unique % count], axis=1)


def _full(
    load: Callable[[list[int], bool], Mapping[int, Stored]], ids: list[int], stored: dict[int, Stored]
) -> dict[int, tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint64]]]:
    """The signature and shingles of `ids`, loaded once (and kept in `stored`)."""
    stored.update(load([pk for pk in ids if pk not in stored or stored[pk].hashvalues is None], True))
    out = {}
    for pk in ids:
        found = stored.get(pk)
        if found is not None and found.hashvalues is not None and found.shingles is not None:
            out[pk] = (found.hashvalues, found.shingles)
    return out


def replay_duplicates(
    ids: npt.NDArray[np.int64],
    exact_keys: npt.NDArray[np.int64],
    keyed: npt.NDArray[np.bool_],
    sketches: npt.NDArray[np.uint16],
    *,
    threshold: float,
    policy: str,
    load: Callable[[list[int], bool], Mapping[int, Stored]],
    num_perm: int = dedup.DEFAULT_NUM_PERM,
) -> dict[int, DupOutcome]:
    """Replay a full re-curation's cluster decisions for the items of one kind (see the module
    docstring) and return the outcome of every item that is not alone in its cluster; any
    other item represents itself.

    `ids` ascend; `exact_keys` holds curation.text.exact_key of each where `keyed` is true
    (false: no exact hash), and `sketches` the stored curation.dedup.sketch rows.
    `load(ids, full)` reads what Stored holds for those ids, with the signature and shingles
    when `full`: first for the items that share an exact key, then in full for those with a
    sketch candidate, so a project of mostly unique texts reads little of it.
    """
    bands, rows = dedup.choose_lsh_params(num_perm, threshold)
    stored: dict[int, Stored] = {}

    # Exact duplicates: only the first item with each exact hash reaches the LSH step. Items
    # sharing a key are checked on the full hash, so a 64-bit collision changes nothing.
    keys, counts = np.unique(exact_keys[keyed], return_counts=True)
    grouped = ids[keyed & np.isin(exact_keys, keys[counts > 1])].tolist()
    stored.update(load(grouped, False))
    first_of_hash: dict[str, int] = {}
    head_of: dict[int, int] = {}
    twins: dict[int, list[int]] = defaultdict(list)
    for pk in grouped:  # ascending, as ids are
        digest = stored[pk].exact_hash if pk in stored else ""
        head = first_of_hash.setdefault(digest, pk) if digest else pk
        if head != pk:
            head_of[pk] = head
            twins[head].append(pk)

    heads = ~np.isin(ids, np.fromiter(head_of, dtype=np.int64, count=len(head_of)))
    head_ids = ids[heads]
    pairs: npt.NDArray[np.int64]
    if len(head_ids) < 2:
        pairs = np.empty((0, 2), dtype=np.int64)
    elif rows >= 2:
        pairs = band_pairs(np.ascontiguousarray(sketches[:, : bands * rows].T[:, heads]), bands, rows)
    else:
        # One row a band: 16 bits would match unrelated texts by the million. Band the full
        # signatures instead (thresholds under 0.25 only, where this reads every signature).
        full = _full(load, head_ids.tolist(), stored)
        head_ids = np.array([pk for pk in head_ids.tolist() if pk in full], dtype=np.int64)
        pairs = band_pairs(np.stack([full[pk][0] for pk in head_ids.tolist()], axis=1), bands, rows)
    full = _full(load, sorted(set(head_ids[pairs.ravel()].tolist())), stored)

    neighbours: dict[int, list[int]] = defaultdict(list)
    jaccards: dict[tuple[int, int], float] = {}
    span = bands * rows
    for a, b in zip(head_ids[pairs[:, 0]].tolist(), head_ids[pairs[:, 1]].tolist(), strict=True):
        if a not in full or b not in full:
            continue  # deleted meanwhile
        # Sketch bands can match by accident: the pipeline's LSH pairs only full bands.
        same = full[a][0][:span] == full[b][0][:span]
        if not same.reshape(bands, rows).all(axis=1).any():
            continue
        score = dedup.jaccard(full[a][1], full[b][1])
        if score >= threshold:
            neighbours[a].append(b)
            neighbours[b].append(a)
            jaccards[(a, b)] = jaccards[(b, a)] = score

    involved = sorted(set(head_of) | set(twins) | set(neighbours))
    quality = {pk: stored[pk].quality for pk in involved}
    representative: dict[int, int] = {}
    members: dict[int, set[int]] = defaultdict(set)
    rule_of: dict[int, str] = {}

    def rank(pk: int) -> tuple[float, int]:
        return _quality_key(pk, quality[pk]) if policy == "quality" else (0.0, pk)

    def join(newcomer: int, reps: list[int], rule: str) -> None:
        # curation.services._join_clusters: the newcomer merges every cluster it matches, and
        # the policy decides who represents the merged cluster.
        winner = min([newcomer, *reps], key=rank)
        representative[newcomer] = winner
        rule_of[newcomer] = "" if winner == newcomer else rule
        if winner != newcomer:
            members[winner].add(newcomer)
        for rep in reps:
            if rep == winner:
                continue
            moved = members.pop(rep, set()) | {rep}
            for member in moved:
                representative[member] = winner
                rule_of[member] = rule
            members[winner] |= moved

    for pk in involved:
        head = head_of.get(pk)
        if head is not None:
            join(pk, [representative[head]], "exact_duplicate")
            continue
        # Decided neighbours, and their exact twins: the pipeline's index holds those too, with
        # the same shingles and so the same score.
        found = [
            (key, jaccards[(pk, n)])
            for n in neighbours.get(pk, [])
            if n < pk
            for key in (n, *twins.get(n, []))
            if key < pk
        ]
        if found:
            reps = dict.fromkeys(representative[key] for key, _ in found)
            join(pk, list(reps), "near_duplicate")
        else:
            representative[pk] = pk
            rule_of[pk] = ""
    return {
        pk: DupOutcome(representative=representative[pk], rule=rule_of[pk])
        for pk in involved
        if representative[pk] != pk or members.get(pk)
    }
