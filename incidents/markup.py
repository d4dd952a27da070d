"""Markdown in, safe HTML out: render with python-markdown, then sanitise with an allowlist (nh3)."""

import re
import threading

import markdown
import nh3

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "dl", "dt", "em", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td",
    "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = {"http", "https", "mailto"}


_local = threading.local()


def _renderer() -> markdown.Markdown:
    """One Markdown instance per thread, reset before each use: building one costs more than rendering a
    short text (the importer renders thousands a second). Instances are not thread-safe, hence per thread."""
    renderer = getattr(_local, "renderer", None)
    if renderer is None:
        renderer = _local.renderer = markdown.Markdown(
            extensions=["extra", "sane_lists"], output_format="html"
        )
    return renderer


# One line of words with nothing Markdown (or HTML) reads as syntax: no emphasis, code, link, heading, list,
# table, footnote, attribute or definition marker, no entity, no tag, no leading or trailing space. Markdown
# renders such a line as one paragraph of the line as it is, which the sanitiser leaves alone; a number then
# a dot ("1. ") starts a list and is excluded. tests/incidents/test_markup.py compares both ways on random lines.
_PLAIN_LINE = re.compile(r"(?!\d+\.)[A-Za-z0-9](?:[A-Za-z0-9 ,.;?'()/]*[A-Za-z0-9,.;?'()/])?")


def render_markdown(text: str) -> str:
    """Render untrusted Markdown to HTML that is safe to embed in a page or an e-mail."""
    if _PLAIN_LINE.fullmatch(text) and "  " not in text:
        return f"<p>{text}</p>"
    html = _renderer().reset().convert(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
