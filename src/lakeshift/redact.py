"""Keep secrets out of output. Every secret value the configuration holds is
registered here; the CLI's error handler and the log handler pass all text
through `redact`, so a driver error that echoes a DSN cannot leak it."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from pydantic import SecretStr

_lock = threading.Lock()
_secrets: set[str] = set()
# MySQL's "Access denied ... (using password: YES)" says whether a password was
# sent, not what it was: matched first (and kept) so the assignment rule below
# never sees it. A real value may contain ')' and is redacted whole.
_KEEP = r"(?P<keep>\(using password: (?:YES|NO)\))|"
# user:password@ in URLs, password=... in DSNs, AWS secret-looking assignments
_PATTERNS = [
    re.compile(r"(?P<pre>[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+(?P<post>@)", re.I),
    re.compile(_KEEP + r"(?P<pre>\b(?:password|passwd|pwd|secret_access_key|aws_secret_access_key|session_token|token)\s*[=:]\s*['\"]?)[^'\"\s;&]+(?P<post>)", re.I),
]


def register(value: Any) -> None:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str) and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def register_model(model: Any) -> None:
    """Register every SecretStr field of a pydantic model, recursively."""
    if model is None:
        return
    for name in getattr(type(model), "model_fields", {}):
        value = getattr(model, name, None)
        if isinstance(value, SecretStr):
            register(value)
        elif hasattr(type(value), "model_fields"):
            register_model(value)


def redact(text: str, *, assignments: bool = True) -> str:
    """Registered secrets and user:password@ in URLs become ***; with
    `assignments` also the value after password=/token:/... (off for output
    that labels secrets itself, like `password: set`)."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern in _PATTERNS if assignments else _PATTERNS[:1]:
        text = pattern.sub(_masked, text)
    return text


def _masked(match: re.Match[str]) -> str:
    if match.groupdict().get("keep"):
        return match.group(0)
    return f"{match.group('pre')}***{match.group('post')}"


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
