import pytest

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
