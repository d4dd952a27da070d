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


# The sanitiser, configured once: nh3.clean builds one from its arguments on every call, which cost several
# times the cleaning of a short text.
_cleaner = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=ALLOWED_ATTRIBUTES,
    url_schemes=URL_SCHEMES,
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


# One line of words with nothing Markdown (or HTML) reads as syntax: no emphasis, code, link, heading, list,
# table, footnote, attribute or definition marker, no entity, no tag, no leading or trailing space. Markdown
# renders such a line as one paragraph of the line as it is, which the sanitiser leaves alone; a number then
# a dot ("1. ") starts a list and is excluded. tests/incidents/test_markup.py compares both ways on random lines.
_PLAIN_LINE = re.compile(r"(?!\d+\.)[A-Za-z0-9](?:[A-Za-z0-9 ,.;?'()/]*[A-Za-z0-9,.;?'()/])?")

# The next most common text: paragraphs (a blank line between them) of such lines, with words in bold
# (**...**) or italics (*...*). Markdown (which costs a short report's create about half a millisecond)
# makes each paragraph a <p> of its lines, joined by newlines, and each span a <strong> or <em> of its
# words; the sanitiser leaves that alone. A span is words with no space at either end, and stands apart
# from any other asterisk: nested, adjacent or unclosed asterisks go to Markdown, as does anything else.
_WORDS = r"[A-Za-z0-9,.;?'()/](?:[A-Za-z0-9 ,.;?'()/]*[A-Za-z0-9,.;?'()/])?"
_SPAN = re.compile(rf"(?<!\*)(\*\*?)({_WORDS})\1(?!\*)")
_LINE_CHARACTERS = re.compile(r"[A-Za-z0-9 ,.;?'()/*]+")
_LIST_ITEM = re.compile(r"\d+\.")
_TAGS = {"*": "em", "**": "strong"}


def _spanned_line(line: str) -> str | None:
    """The line's HTML as Markdown renders it, or None when it is not words and spans (see above)."""
    if (
        line[:1] == " "
        or line[-1:] == " "
        or "  " in line
        or not _LINE_CHARACTERS.fullmatch(line)
        or _LIST_ITEM.match(line)
    ):
        return None
    spans = _SPAN.findall(line)
    if sum(2 * len(marker) for marker, _ in spans) != line.count("*"):
        return None  # an asterisk outside a span: a list item, a rule, nesting ... Markdown decides
    return _SPAN.sub(lambda match: f"<{_TAGS[match[1]]}>{match[2]}</{_TAGS[match[1]]}>", line)


def _simple_paragraphs(text: str) -> str | None:
    """The HTML of paragraphs of words and spans, as Markdown renders them; None for anything else."""
    paragraphs = []
    for paragraph in text.split("\n\n"):
        lines = [_spanned_line(line) for line in paragraph.split("\n")]
        if not paragraph or None in lines:
            return None
        paragraphs.append("<p>" + "\n".join(lines) + "</p>")  # type: ignore[arg-type]
    return "\n".join(paragraphs)


def render_markdown(text: str) -> str:
    """Render untrusted Markdown to HTML that is safe to embed in a page or an e-mail."""
    if _PLAIN_LINE.fullmatch(text) and "  " not in text:
        return f"<p>{text}</p>"
    simple = _simple_paragraphs(text)
    if simple is not None:
        return simple
    return _cleaner.clean(_renderer().reset().convert(text))
