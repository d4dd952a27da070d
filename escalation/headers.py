"""Header text that a mail system accepts: one line, printable, of bounded length.

Subjects are built from what reporters and monitoring systems wrote (a title, a multi-line alert summary).
A CR or LF in a header makes Django refuse the whole message (``BadHeaderError``) on every retry until the
row is dead, so every header value is folded to one line when it is stored and again when it is sent.
"""

from __future__ import annotations

import unicodedata
from email.header import Header

CRLF = "\r\n"
LINE_LENGTH = 78  # RFC 5322's recommended limit: headers are folded to it
SUBJECT_MAX_LENGTH = 200  # RFC 5322 recommends 78 per line; Django folds longer ones, many clients cut at 255
HEADER_MAX_LENGTH = 200


def one_line(value: object, *, limit: int = HEADER_MAX_LENGTH) -> str:
    """`value` as a single header line: every control character, line or paragraph separator (CR, LF, TAB,
    NUL, U+0085, U+2028, ...) becomes a space, format characters are dropped, runs of white space collapse to one, and text longer than
    `limit` is cut at a word where possible and marked with an ellipsis. Applying it twice changes nothing."""
    text = str(value)
    # Printable text holds no control, separator or format character and no white space but " ", which
    # `_fold` would all leave as they are: only runs of spaces and the ends need folding then.
    if not (text.isprintable() and "  " not in text and text == text.strip(" ")):
        text = " ".join("".join(_fold(ch) for ch in text).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + "…"


def subject_line(value: object) -> str:
    return one_line(value, limit=SUBJECT_MAX_LENGTH)


def folded(name: str, value: str) -> str:
    """`name: value` as it goes on the wire (CRLF between lines, none at the end), as Django's messages
    carry it: ASCII folded at spaces to LINE_LENGTH (a word longer than that stays whole), other text as
    RFC 2047 encoded words in UTF-8. `value` is one line already (`one_line`)."""
    if not value.isascii():
        return f"{name}: {Header(value, 'utf-8', header_name=name).encode(linesep=CRLF)}"
    first, *words = value.split(" ")
    lines = [f"{name}: {first}"]
    for word in words:
        if word and len(lines[-1]) + 1 + len(word) > LINE_LENGTH:
            lines.append(f" {word}")
        else:
            lines[-1] += f" {word}"
    return CRLF.join(lines)


def _fold(ch: str) -> str:
    category = unicodedata.category(ch)
    # Cc: C0/C1 controls (CR, LF, TAB, NUL, NEL); Zl/Zp: U+2028/U+2029. Format characters (bidi overrides,
    # zero-width) are dropped: they can make a subject read differently from what it says.
    if category in {"Cc", "Zl", "Zp"} or ch.isspace():
        return " "
    return "" if category == "Cf" else ch
