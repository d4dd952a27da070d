from __future__ import annotations

from pathlib import Path

MESSAGES = Path(__file__).parent / "messages"


def message(name: str, **placeholders: str) -> bytes:
    """A message of the corpus, with {{NAME}} placeholders filled in."""
    raw = (MESSAGES / name).read_bytes()
    for key, value in placeholders.items():
        raw = raw.replace(f"{{{{{key}}}}}".encode(), value.encode())
    return raw


def huge_message(size: int) -> bytes:
    line = b"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\n"
    return message("huge.eml") + line * (size // len(line) + 1) + b"--huge--\r\n"


def nested_message(depth: int, *, message_id: str = "deep@example.org") -> bytes:
    """A message whose text sits `depth` multipart levels down (a MIME nesting bomb when depth is large)."""
    head = (
        f"From: mallory@example.org\r\nTo: desk@localhost\r\nSubject: Nested {depth} deep\r\n"
        f"Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n"
    )
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n' for level in range(depth)
    )
    closing = "".join(f"--b{level}--\r\n" for level in reversed(range(depth)))
    return (head + opening + "Content-Type: text/plain\r\n\r\nThe disk is full.\r\n" + closing).encode()


def many_attachments(count: int, *, message_id: str = "many@example.org") -> bytes:
    """A message with `count` small text attachments."""
    parts = "".join(
        f'--m\r\nContent-Type: text/plain; name="log{n}.txt"\r\n'
        f'Content-Disposition: attachment; filename="log{n}.txt"\r\n\r\nline {n}\r\n'
        for n in range(count)
    )
    return (
        "From: carol@example.org\r\nTo: desk@localhost\r\nSubject: Logs attached\r\n"
        f"Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
        "--m\r\nContent-Type: text/plain\r\n\r\nThe backup failed, logs attached.\r\n"
        f"{parts}--m--\r\n"
    ).encode()
