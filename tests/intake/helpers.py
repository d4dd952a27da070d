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
