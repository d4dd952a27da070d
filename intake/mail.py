"""Reading one RFC 822 message with the stdlib `email` package (policy=default): who sent it, what it
replies to, its text (HTML-only mail sanitised to text with nh3), its attachments, and whether a
machine sent it (auto-replies and bounces are never answered)."""

from __future__ import annotations

import email
import html
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from email.utils import getaddresses
from html.parser import HTMLParser

import nh3

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


class MessageTooLarge(ValueError):
    """Refused before parsing: the size limit is the first defence against a mail bomb."""


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


def parse(raw: bytes, *, limit: int) -> ParsedMessage:
    """Parse one message; MessageTooLarge when it is over `limit` bytes (checked before parsing)."""
    if len(raw) > limit:
        raise MessageTooLarge(f"The message is over the limit of {limit} bytes; it was not read.")
    message = email.message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)  # noqa: S101 (policy=default builds EmailMessage)
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
