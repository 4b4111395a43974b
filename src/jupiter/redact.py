"""Secret redaction for logs, audit entries and notifications.

Applied to every structure before it is written to the audit trail, so a
secret that slips into a plan, a command's output or an error message is not
preserved for ever in a tamper-evident log.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***REDACTED***"

_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[_-]?key|private[_-]?key|credential|auth)$",
    re.IGNORECASE,
)
_PATTERNS = [
    # PEM private keys (any kind).
    re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.DOTALL),
    # user:password@ in URLs.
    re.compile(r"(?<=://)([^:/@\s]+):([^@\s]+)(?=@)"),
    # AWS access key ids, GitHub and Slack tokens.
    re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}\b"),
    # key=value / key: value pairs whose key names a secret.
    re.compile(
        r"(?i)\b((?:pass(?:word|wd)?|secret|token|api[_-]?key)\s*[=:]\s*)(['\"]?)[^\s'\",;]+\2"
    ),
]


def redact_text(value: str) -> str:
    out = _PATTERNS[0].sub(f"-----BEGIN PRIVATE KEY-----{MASK}-----END PRIVATE KEY-----", value)
    out = _PATTERNS[1].sub(lambda m: f"{m.group(1)}:{MASK}", out)
    for pattern in _PATTERNS[2:5]:
        out = pattern.sub(MASK, out)
    return _PATTERNS[5].sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}{m.group(2)}", out)


def redact(value: Any) -> Any:
    """Return a copy of ``value`` with secrets masked (dicts, lists, strings)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: (MASK if isinstance(k, str) and _SECRET_KEY.search(k) and v else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
