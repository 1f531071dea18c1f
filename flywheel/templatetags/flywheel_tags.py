import math
from typing import Any

from django import template
from django.utils.safestring import SafeString

from flywheel.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    return render_markdown(text or "")


# A nested value (a training run's summary) shows its first few scalar entries; the API has all.
_NESTED_SHOWN = 4


@register.filter(name="metric")
def metric_filter(value: Any) -> str:
    """A metric as text: numbers to four decimals at most, text as it is, nothing as a dash,
    a mapping as its first scalar entries (k=v), a list as its items."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        scalars = [(k, v) for k, v in value.items() if not isinstance(v, dict | list)]
        shown = ", ".join(f"{k}={metric_filter(v)}" for k, v in scalars[:_NESTED_SHOWN])
        return shown + (", …" if len(value) > _NESTED_SHOWN else "") if shown else "…"
    if isinstance(value, list | tuple):
        return ", ".join(metric_filter(item) for item in value) or "–"
    return str(value)
