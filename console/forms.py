"""Input parsing for the console: filters, threshold edits and confirmations.

Every field has a label (the templates render them with <label for>), and nothing here writes:
forms only turn request data into typed values or field errors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django import forms
from django.http import QueryDict

from console import whatif
from curation import rules
from curation.models import ItemKind, Status
from feedback.models import PromptSource, ResponseSource

STATUS_CHOICES = [
    ("needs_review", "Needs review"),
    ("rejected", "Rejected"),
    ("kept", "Kept"),
    ("pending", "Pending"),
    ("all", "All"),
]
REASON_CHOICES = [
    ("", "Any reason"),
    ("exact_duplicate", "Exact duplicate"),
    ("near_duplicate", "Near duplicate"),
    *[(f"rule:{name}", f"Rule: {name.replace('_', ' ')}") for name in whatif.RULES],
]
SOURCE_CHOICES = [
    ("", "Any source"),
    *{value: label for value, label in [*PromptSource.choices, *ResponseSource.choices]}.items(),
]


class ReviewFilterForm(forms.Form):
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False, label="Status")
    reason = forms.ChoiceField(choices=REASON_CHOICES, required=False, label="Reason")
    kind = forms.ChoiceField(choices=[("", "Any kind"), *ItemKind.choices], required=False, label="Kind")
    source = forms.ChoiceField(choices=SOURCE_CHOICES, required=False, label="Source")
    author = forms.CharField(required=False, max_length=150, label="Author (username)")
    score_min = forms.FloatField(required=False, min_value=0, max_value=1, label="Score from")
    score_max = forms.FloatField(required=False, min_value=0, max_value=1, label="Score to")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, max_length=200, label="Search text")

    FIELDS = (
        "status",
        "reason",
        "kind",
        "source",
        "author",
        "score_min",
        "score_max",
        "date_from",
        "date_to",
        "q",
    )


# The filters always on show; the rest sit behind "More filters".
MAIN_FILTERS = ("status", "reason", "kind", "source", "q")
MORE_FILTERS = ("author", "score_min", "score_max", "date_from", "date_to")


@dataclass(frozen=True)
class ReviewFilters:
    status: str = Status.NEEDS_REVIEW
    reason: str = ""
    kind: str = ""
    source: str = ""
    author: str = ""
    score_min: float | None = None
    score_max: float | None = None
    date_from: date | None = None
    date_to: date | None = None
    q: str = ""

    def querystring(self) -> str:
        """The filters as a query string, to carry them through decisions and page links."""
        data = QueryDict(mutable=True)
        for name in ReviewFilterForm.FIELDS:
            value = getattr(self, name)
            if value not in (None, ""):
                data[name] = str(value)
        return data.urlencode()

    def hidden(self) -> list[tuple[str, str]]:
        """The filters as (name, value) pairs for hidden inputs in the queue's forms."""
        return [(name, str(value)) for name, value in QueryDict(self.querystring()).items()]

    @property
    def active(self) -> bool:
        return self != ReviewFilters(status=self.status)


def review_filters(data: QueryDict) -> tuple[ReviewFilters, ReviewFilterForm]:
    """Filters from a request; an invalid field is ignored (and shown as an error on the form)."""
    form = ReviewFilterForm(data)
    form.is_valid()
    values: dict[str, Any] = {
        name: form.cleaned_data.get(name) for name in ReviewFilterForm.FIELDS if name not in form.errors
    }
    values = {k: v for k, v in values.items() if v not in (None, "")}
    if not values.get("status"):
        values["status"] = Status.NEEDS_REVIEW
    return ReviewFilters(**values), form


class AuditFilterForm(forms.Form):
    action = forms.CharField(required=False, max_length=64, label="Action")
    actor = forms.CharField(required=False, max_length=150, label="Actor (username)")
    target_type = forms.CharField(required=False, max_length=64, label="Target type")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        label="Reason (recorded in the audit log)",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean_reason(self) -> str:
        reason = str(self.cleaned_data["reason"]).strip()
        if not reason:
            raise forms.ValidationError("Say why; the audit log keeps it.")
        return reason


# --- Thresholds ------------------------------------------------------------------------------

KINDS = ("prompt", "response")
_HINTS = {
    "min_words": "Fewer words than this is rejected.",
    "max_words": "More words than this is rejected (empty: no limit).",
    "min_mean_word_length": "Mean word length below this is rejected.",
    "max_mean_word_length": "Mean word length above this is rejected.",
    "mean_word_length_min_words": "Mean word length is checked only from this many words.",
    "max_symbol_ratio": "'#' and '...' per word (empty: off).",
    "min_alpha_word_ratio": "Share of words with a letter (empty: off).",
    "min_stop_words": "Function words a text needs (empty: off).",
    "stop_words_min_words": "Stop words are checked only from this many words.",
    "max_dup_line_fraction": "Share of repeated lines (empty: off).",
    "max_dup_paragraph_fraction": "Share of repeated paragraphs (empty: off).",
    "max_top_2gram_coverage": "Text covered by the commonest repeated 2-gram (empty: off).",
    "max_top_3gram_coverage": "Same for 3-grams (empty: off).",
    "max_top_4gram_coverage": "Same for 4-grams (empty: off).",
    "max_bullet_line_ratio": "Share of bullet lines (empty: off).",
    "max_ellipsis_line_ratio": "Share of lines ending in '...' (empty: off).",
    "line_rules_min_lines": "Line rules apply only from this many lines.",
    "max_word_length": "Longest word outside URLs and paths (empty: off).",
    "max_keyboard_mash_ratio": "Share of keyboard-mash words (empty: off).",
}


@dataclass(frozen=True)
class ThresholdField:
    kind: str
    name: str
    label: str
    hint: str
    value: Any
    default: Any
    nullable: bool
    integer: bool
    error: str = ""

    @property
    def input_name(self) -> str:
        return f"{self.kind}.{self.name}"

    @property
    def input_id(self) -> str:
        return f"t-{self.kind}-{self.name}"

    @property
    def changed(self) -> bool:
        return self.value != self.default

    @property
    def shown(self) -> str:
        return (
            ""
            if self.value is None
            else f"{self.value:g}"
            if isinstance(self.value, float)
            else str(self.value)
        )

    @property
    def default_shown(self) -> str:
        return "off" if self.default is None else f"{self.default:g}"


def _field_types() -> dict[str, tuple[bool, bool]]:
    hints = typing.get_type_hints(rules.RuleThresholds)
    types = {}
    for f in dataclasses.fields(rules.RuleThresholds):
        args = typing.get_args(hints[f.name]) or (hints[f.name],)
        types[f.name] = (type(None) in args, int in args and float not in args)
    return types


FIELD_TYPES = _field_types()


@dataclass
class ThresholdsInput:
    rule_overrides: dict[str, dict[str, Any]]
    near_dup_threshold: float
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """Names exactly these settings: the apply step checks it matches what was previewed."""
        payload = json.dumps([self.rule_overrides, self.near_dup_threshold], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _number(raw: str, *, integer: bool) -> int | float:
    value = float(raw)
    if integer:
        if not value.is_integer():
            raise ValueError("a whole number")
        return int(value)
    return value


def thresholds_input(data: QueryDict) -> ThresholdsInput:
    """Proposed settings from a form post; only values that differ from the defaults become
    overrides, so a later change of a default reaches projects that never touched it."""
    overrides: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
    errors: dict[str, str] = {}
    for kind in KINDS:
        defaults = rules.thresholds_for(kind)  # type: ignore[arg-type]
        for name, (nullable, integer) in FIELD_TYPES.items():
            key = f"{kind}.{name}"
            if key not in data:
                continue
            raw = data.get(key, "").strip()
            value: Any
            if raw == "":
                if not nullable:
                    errors[key] = "Needs a value."
                    continue
                value = None
            else:
                try:
                    value = _number(raw, integer=integer)
                except ValueError:
                    errors[key] = "Needs a whole number." if integer else "Needs a number."
                    continue
                if value < 0:
                    errors[key] = "Cannot be negative."
                    continue
            if value != getattr(defaults, name):
                overrides[kind][name] = value
    near_dup = 0.8
    raw = data.get("near_dup_threshold", "").strip()
    try:
        near_dup = float(raw)
        if not 0 < near_dup <= 1:
            raise ValueError
    except ValueError:
        errors["near_dup_threshold"] = "Needs a number above 0 and at most 1."
    return ThresholdsInput(
        rule_overrides={kind: values for kind, values in overrides.items() if values},
        near_dup_threshold=near_dup,
        errors=errors,
    )


def threshold_fields(
    rule_overrides: dict[str, dict[str, Any]],
    errors: dict[str, str] | None = None,
    raw: QueryDict | None = None,
) -> dict[str, list[ThresholdField]]:
    """The edit form's rows per kind: the value in force (or as typed), and the default."""
    errors = errors or {}
    out: dict[str, list[ThresholdField]] = {}
    for kind in KINDS:
        defaults = rules.thresholds_for(kind)  # type: ignore[arg-type]
        current = whatif.thresholds_with(kind, rule_overrides.get(kind))
        rows = []
        for name, (nullable, integer) in FIELD_TYPES.items():
            key = f"{kind}.{name}"
            value: Any = getattr(current, name)
            if raw is not None and key in errors:
                value = raw.get(key, "")
            rows.append(
                ThresholdField(
                    kind=kind,
                    name=name,
                    label=name.replace("_", " ").capitalize(),
                    hint=_HINTS.get(name, ""),
                    value=value,
                    default=getattr(defaults, name),
                    nullable=nullable,
                    integer=integer,
                    error=errors.get(key, ""),
                )
            )
        out[kind] = rows
    return out


def proposed_hidden(data: QueryDict) -> list[tuple[str, str]]:
    """The threshold inputs of a preview request, to carry into the apply form unchanged."""
    names = {f"{kind}.{name}" for kind in KINDS for name in FIELD_TYPES} | {"near_dup_threshold"}
    return [(name, data.get(name, "")) for name in sorted(names) if name in data]
