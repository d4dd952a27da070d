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


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="aZ09 ,.;?'()/*_#-+>`[]!<&\n", min_size=1, max_size=40))
def test_a_plain_line_renders_as_markdown_renders_it(text):
    # render_markdown answers a line of plain words without running Markdown: the same HTML as Markdown's.
    full = nh3.clean(
        markup._renderer().reset().convert(text), tags=markup.ALLOWED_TAGS, attributes=markup.ALLOWED_ATTRIBUTES,
        url_schemes=markup.URL_SCHEMES, link_rel="noopener noreferrer nofollow", strip_comments=True,
    )  # fmt: skip
    assert render_markdown(text) == full


@pytest.mark.parametrize("text", ["Printer on floor 3 jams", "Since this morning", "It's (still) down; why?"])
def test_a_plain_line_is_one_paragraph(text):
    assert render_markdown(text) == f"<p>{text}</p>"
