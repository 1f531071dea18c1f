"""Markdown to safe HTML. Everything a user or a model wrote passes through here.

Markdown output is sanitized with nh3 against a small allow-list, so model text can show
code and lists but never run a script or load an image that phones home.
"""

from __future__ import annotations

import markdown as md
import nh3
from django.utils.safestring import SafeString, mark_safe

_TAGS = {
    "p",
    "br",
    "hr",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "a",
    "del",
}
_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


class _EscapeRawHtml(md.extensions.Extension):
    """Treat raw HTML in the source as text, so "<script>" shows as the characters the model
    wrote: annotators judging a response must see exactly what it said."""

    def extendMarkdown(self, markdown: md.Markdown) -> None:  # noqa: N802 - Markdown's API name
        markdown.preprocessors.deregister("html_block")
        markdown.inlinePatterns.deregister("html")


def render_markdown(text: str) -> SafeString:
    html = md.markdown(
        text,
        extensions=["fenced_code", "tables", "sane_lists", _EscapeRawHtml()],
        output_format="html",
    )
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # noqa: S308 - sanitized by nh3 just above
