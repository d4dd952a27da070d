"""Reading one RFC 822 message with the stdlib `email` package (policy=default): who sent it, what it
replies to, its text (HTML-only mail sanitised to text with nh3), its attachments, and whether a
machine sent it (auto-replies and bounces are never answered)."""

from __future__ import annotations

import email
import html
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.policy import default
from email.utils import getaddresses
from html.parser import HTMLParser

import nh3
from django.conf import settings

BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "li",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "blockquote",
    "table",
    "ul",
    "ol",
    "hr",
}
MACHINE_SENDERS = re.compile(
    r"^(mailer-daemon|postmaster|noreply|no-reply|bounce[s]?)([+@-]|$)", re.IGNORECASE
)
MESSAGE_ID_RE = re.compile(r"<([^<>\s]+)>")
HEADER_BYTES = 256 * 1024  # enough for any real header block; the envelope of a refused message reads no more


class MessageRefused(ValueError):
    """A message the desk will not read (too large, nested too deep, too many attachments). The caller
    records it and answers the sender's MTA with a permanent failure (ingest_email exits 65)."""


class MessageTooLarge(MessageRefused):
    """Refused before parsing: the size limit is the first defence against a mail bomb."""


class MessageTooDeep(MessageRefused):
    """MIME parts nested deeper than the limit (the stdlib parser recurses once per level)."""


class TooManyAttachments(MessageRefused):
    """More attachments than the limit: one message must not fill the incident with files."""


@dataclass(frozen=True)
class Envelope:
    """What a refused message is recorded with: read from the top-level headers alone, which never nest."""

    message_id: str
    sender: str
    subject: str


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class ParsedMessage:
    message_id: str
    sender: str
    sender_name: str
    subject: str
    text: str
    references: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    machine: str = ""  # "auto_reply" or "bounce" when a machine sent it


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCK_TAGS:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Sanitise with nh3 (scripts, styles and every attribute dropped), then keep the text and line breaks."""
    clean = nh3.clean(
        markup, tags=BLOCK_TAGS | {"td", "th", "span", "b", "i", "strong", "em", "a"}, attributes={}
    )
    extractor = _TextExtractor()
    extractor.feed(clean)
    text = html.unescape("".join(extractor.parts)).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _machine(message: EmailMessage, sender: str) -> str:
    content_type = message.get_content_type()
    if content_type == "multipart/report" or message.get_param("report-type") == "delivery-status":
        return "bounce"
    if sender.split("@")[0] in {"mailer-daemon", "postmaster"}:
        return "bounce"
    if (message.get("Return-Path") or "").strip() == "<>":
        return "bounce"
    auto = (message.get("Auto-Submitted") or "no").strip().lower()
    if auto != "no":
        return "auto_reply"
    if (message.get("Precedence") or "").strip().lower() in {"bulk", "junk", "list", "auto_reply"}:
        return "auto_reply"
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return "auto_reply"
    if MACHINE_SENDERS.match(sender):
        return "auto_reply"
    return ""


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    try:
        content = body.get_content()
    except (LookupError, UnicodeError):
        payload = body.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else str(payload)
    if not isinstance(content, str):
        return ""
    return html_to_text(content) if body.get_content_type() == "text/html" else content.strip()


def _attachments(message: EmailMessage) -> list[Attachment]:
    found = []
    for part in message.iter_attachments():
        if part.is_multipart() or part.get_content_maintype() == "message":
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes) or not data:
            continue
        found.append(Attachment(part.get_filename() or "attachment", part.get_content_type(), data))
    return found


def _depth(message: Message) -> int:
    """How deep the deepest part sits below the message (0 for a single part), walked without recursion."""
    deepest = 0
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack:
        part, level = stack.pop()
        deepest = max(deepest, level)
        payload = part.get_payload()
        if part.is_multipart() and isinstance(payload, list):
            stack.extend((child, level + 1) for child in payload if isinstance(child, Message))
    return deepest


def _attachment_count(message: Message) -> int:
    """Every attachment at any level (named or marked `attachment`), not only the top level's, so that
    nesting cannot hide files from the cap. Call it once the depth is known to be within the limit."""
    return sum(
        1
        for part in message.walk()
        if not part.is_multipart() and (part.get_content_disposition() == "attachment" or part.get_filename())
    )


def envelope(raw: bytes) -> Envelope:
    """Message-ID, sender and subject from the headers alone (no body is parsed): for the record of a
    message that is refused before or while it is read."""
    headers = BytesHeaderParser(policy=default).parsebytes(raw[:HEADER_BYTES])
    addresses = getaddresses([str(headers.get("From") or "")])
    sender = addresses[0][1] if addresses else ""
    return Envelope(
        message_id=(MESSAGE_ID_RE.findall(str(headers.get("Message-ID") or "")) or [""])[0][:255].replace(
            "\x00", ""
        ),
        sender=sender.strip().lower()[:254].replace("\x00", ""),
        subject=re.sub(r"\s+", " ", str(headers.get("Subject") or "")).strip().replace("\x00", ""),
    )


def parse(
    raw: bytes,
    *,
    limit: int,
    max_depth: int | None = None,
    max_attachments: int | None = None,
) -> ParsedMessage:
    """Parse one message. Refused (a MessageRefused, nothing else read) when it is over `limit` bytes
    (checked before parsing), nested more than `max_depth` levels or carries more than `max_attachments`
    attachments (None: the settings INTAKE_EMAIL_MAX_MIME_DEPTH and INTAKE_EMAIL_MAX_ATTACHMENTS)."""
    if len(raw) > limit:
        raise MessageTooLarge(f"The message is over the limit of {limit} bytes; it was not read.")
    max_depth = settings.INTAKE_EMAIL_MAX_MIME_DEPTH if max_depth is None else max_depth
    max_attachments = settings.INTAKE_EMAIL_MAX_ATTACHMENTS if max_attachments is None else max_attachments
    try:
        message = email.message_from_bytes(raw, policy=default)
    except RecursionError as exc:
        # The stdlib parser recurses once per level: thousands of levels exhaust Python's stack first.
        raise MessageTooDeep(
            f"The message's MIME parts are nested thousands of levels deep, over the limit of {max_depth}; "
            "it was not read."
        ) from exc
    assert isinstance(message, EmailMessage)  # noqa: S101 (policy=default builds EmailMessage)
    depth = _depth(message)
    if depth > max_depth:
        raise MessageTooDeep(
            f"The message's MIME parts are nested {depth} levels deep, over the limit of {max_depth}; "
            "it was not read."
        )
    attachments = _attachment_count(message)
    if attachments > max_attachments:
        raise TooManyAttachments(
            f"The message has {attachments} attachments, over the limit of {max_attachments}; it was not read."
        )
    addresses = getaddresses([str(message.get("From") or "")])
    sender_name, sender = addresses[0] if addresses else ("", "")
    references = MESSAGE_ID_RE.findall(
        f"{message.get('In-Reply-To') or ''} {message.get('References') or ''}"
    )
    subject = re.sub(r"\s+", " ", str(message.get("Subject") or "")).strip()
    return _without_nul(
        ParsedMessage(
            message_id=(MESSAGE_ID_RE.findall(str(message.get("Message-ID") or "")) or [""])[0][:255],
            sender=sender.strip().lower()[:254],
            sender_name=sender_name,
            subject=subject,
            text=_text(message),
            references=references,
            attachments=_attachments(message),
            machine=_machine(message, sender.strip().lower()),
        )
    )


def _without_nul(parsed: ParsedMessage) -> ParsedMessage:
    """NUL never belongs in mail text, and PostgreSQL refuses it in text columns."""
    for name in ("message_id", "sender", "sender_name", "subject", "text"):
        setattr(parsed, name, getattr(parsed, name).replace("\x00", ""))
    parsed.references = [ref.replace("\x00", "") for ref in parsed.references]
    for attachment in parsed.attachments:
        attachment.filename = attachment.filename.replace("\x00", "")
    return parsed
