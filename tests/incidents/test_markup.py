import nh3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incidents import markup
from incidents.markup import render_markdown

XSS = [
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[multi\nline](javascript:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<img src=x onerror="alert(1)">',
    "<svg onload=alert(1)>",
    '<a href="javascript&#58;alert(1)">x</a>',
    "![x](javascript:alert(1))",
    "<iframe src=//evil></iframe>",
    '<div style="background:url(javascript:alert(1))">x</div>',
]


@pytest.mark.parametrize("payload", XSS)
def test_markdown_never_yields_active_content(payload):
    html = render_markdown(payload).lower()
    for needle in ["<script", "javascript:", "onerror", "onload", "<iframe", "<svg", "data:text", "style="]:
        assert needle not in html


def test_markdown_keeps_formatting_and_safe_links():
    html = render_markdown("**bold** and [docs](https://example.org)\n\n- a\n- b")
    assert "<strong>bold</strong>" in html
    assert 'href="https://example.org"' in html
    assert 'rel="noopener noreferrer nofollow"' in html
    assert "<li>a</li>" in html


def _by_markdown(text):
    """What Markdown and the sanitiser (configured on each call, as nh3.clean is) make of the text."""
    return nh3.clean(
        markup._renderer().reset().convert(text), tags=markup.ALLOWED_TAGS, attributes=markup.ALLOWED_ATTRIBUTES,
        url_schemes=markup.URL_SCHEMES, link_rel="noopener noreferrer nofollow", strip_comments=True,
    )  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="aZ09 ,.;?'()/*_#-+>`[]!<&\n", min_size=1, max_size=40))
def test_a_plain_line_renders_as_markdown_renders_it(text):
    # render_markdown answers a line of plain words without running Markdown: the same HTML as Markdown's.
    assert render_markdown(text) == _by_markdown(text)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(["word", "a b", " ", "*", "**", "\n", "\n\n", "1.", "2", ",", "(x)", "?"]),
        max_size=12,
    )
    .map("".join)
    .filter(bool)
    | st.text(alphabet="aZ0 ,.;*\n", min_size=1, max_size=40)
)
def test_paragraphs_with_bold_and_italics_render_as_markdown_renders_them(text):
    # Paragraphs of plain lines with **bold** and *italic* words are answered without Markdown too.
    assert render_markdown(text) == _by_markdown(text)


@pytest.mark.parametrize("text", ["Printer on floor 3 jams", "Since this morning", "It's (still) down; why?"])
def test_a_plain_line_is_one_paragraph(text):
    assert render_markdown(text) == f"<p>{text}</p>"


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("Since this morning, **every** job.", "<p>Since this morning, <strong>every</strong> job.</p>"),
        ("It *fails* again\nafter a **cold start**\n\nSee above.",
         "<p>It <em>fails</em> again\nafter a <strong>cold start</strong></p>\n<p>See above.</p>"),
    ],
)  # fmt: skip
def test_bold_italics_and_paragraphs_need_no_markdown(monkeypatch, text, html):
    monkeypatch.setattr(markup, "_renderer", None)  # Markdown is not called (it costs about 0.4 ms a text)
    assert render_markdown(text) == html
