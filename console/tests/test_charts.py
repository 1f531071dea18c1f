"""Server-side SVG charts and marked-up text: axes and labels present, every text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from console import charts
from console.highlight import highlight_spans, word_diff

EVIL = '<script>alert("x")</script>&'
SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    # Well-formed XML is the proof that nothing unescaped got in.
    return ET.fromstring(svg)  # noqa: S314 - our own output, parsed in a test


def test_it_draws_a_bar_chart_with_axes_labels_and_escaped_text():
    svg = charts.bar_chart(chart_id="c1", title=EVIL, labels=[EVIL, "b"], series={EVIL: [3, 7]}, y_label="n")
    root = _parse(svg)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert root.find(f"{SVG}title").text == EVIL
    rects = root.findall(f"{SVG}rect")
    assert len(rects) == 2 and float(rects[1].get("height")) > float(rects[0].get("height"))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "0" in texts and EVIL in texts and "n" in texts  # y ticks, x label, axis title


def test_it_draws_a_line_chart_with_gaps_for_missing_values():
    svg = charts.line_chart(
        chart_id="c2", title="alpha", labels=["w1", "w2", "w3", "w4"], series={"a": [0.5, None, 0.7, 0.8]}
    )
    root = _parse(svg)
    lines = root.findall(f"{SVG}polyline")
    # The gap at w2 breaks the line: w1 stands alone, w3-w4 is one segment.
    assert len(lines) == 1 and len(lines[0].get("points").split()) == 2
    assert len(root.findall(f"{SVG}circle")) == 3
    assert "w2: n/a" in root.find(f"{SVG}desc").text


def test_it_says_so_when_there_is_no_data():
    for svg in (
        charts.bar_chart(chart_id="e1", title="t", labels=[], series={}),
        charts.line_chart(chart_id="e2", title="t", labels=["a"], series={"x": [None]}),
        charts.hbar_chart(chart_id="e3", title="t", items=[]),
    ):
        assert "No data yet" in svg
        _parse(svg)


def test_it_draws_horizontal_bars_for_long_labels():
    svg = charts.hbar_chart(chart_id="h", title="reasons", items=[("rule:" + "x" * 40, 5), (EVIL, 2)])
    _parse(svg)
    assert "…" in svg and "&lt;script&gt;" in svg


def test_it_picks_round_ticks():
    assert charts.nice_ticks(0, 7) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_it_highlights_pii_spans_and_escapes_the_rest():
    text = "mail <b>me</b> at a@b.co now"
    start = text.index("a@b.co")
    html = highlight_spans(text, [{"kind": "email", "start": start, "end": start + 6}])
    assert (
        html
        == 'mail &lt;b&gt;me&lt;/b&gt; at <mark class="pii" title="email" data-kind="email">a@b.co</mark> now'
    )


def test_it_marks_word_differences_and_escapes_them():
    left, right, truncated = word_diff("keep the <b>plant</b> warm", "keep the <i>basil</i> warm")
    assert left == "keep the <del>&lt;b&gt;plant&lt;/b&gt;</del> warm"
    assert right == "keep the <ins>&lt;i&gt;basil&lt;/i&gt;</ins> warm"
    assert not truncated


def test_it_ignores_case_and_punctuation_in_a_diff_as_the_duplicate_hash_does():
    left, right, _ = word_diff("Keep the plant warm.", "KEEP THE PLANT WARM!")
    assert "<del>" not in left and "<ins>" not in right
