"""Routing keys never reach a log: a logging filter for Django's loggers (the development server's access
log among them) and a gunicorn logger class for its access log (`gunicorn --logger-class
intake.logs.GunicornLogger`). A key in the query string (Alertmanager's only option before it could send
a Bearer token) would otherwise be written on every request line."""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"
_PATTERNS = (
    re.compile(r"(?P<name>routing_key=)[^&\s\"']+", re.IGNORECASE),
    re.compile(r"(?P<name>\"routing_key\"\s*:\s*\")[^\"]*", re.IGNORECASE),
    re.compile(r"(?P<name>\bBearer\s+)[^\s\"']+", re.IGNORECASE),
    re.compile(r"(?P<name>X-Routing-Key:\s*)[^\s\"']+", re.IGNORECASE),
)


def redact(text: str) -> str:
    """The text with every routing key (query string, JSON body, Bearer token, header) replaced."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group("name") + REDACTED, text)
    return text


class RedactRoutingKeys(logging.Filter):
    """Rewrites the record's message with the keys redacted (installed on the handlers in LOGGING)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's business, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


try:  # gunicorn is the production server; the class exists only where it is installed
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # pragma: no cover
    _GunicornLogger = None


if _GunicornLogger is not None:

    class GunicornLogger(_GunicornLogger):
        """gunicorn's logger with the query string, request line and headers of each access-log line
        redacted."""

        def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
            atoms = super().atoms(resp, req, environ, request_time)
            for name, value in atoms.items():
                if not isinstance(value, str):
                    continue
                secret = name.startswith("{") and ("routing-key" in name or "authorization" in name)
                atoms[name] = REDACTED if secret and value != "-" else redact(value)
            return atoms
