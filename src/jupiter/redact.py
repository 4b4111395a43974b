"""Secret redaction: the one function every output, stored finding and audit
entry goes through.

Applied to findings as they are ingested (scanner snippets and messages often
quote the secret they found), to every structure written to the audit trail,
and to error messages, so a secret that slips into a report, a plan, a
command's output or an error is not preserved or printed.

What is masked (see docs/reliability.md):

* PEM private key blocks of any kind, also when cut off before their END line;
* passwords in URLs (``scheme://user:PASSWORD@host``);
* ``key=value`` / ``key: value`` / ``"key": "value"`` pairs whose key names a
  secret (password, secret, token, api key, access key, ...), including URL
  query parameters (``?access_token=...``);
* ``Bearer`` tokens and ``Authorization:`` header values;
* common token formats: AWS access key ids, GitHub, GitLab, Slack, Stripe,
  Google, npm, PyPI, SendGrid and OpenAI-style keys, JWTs, Slack webhooks.

Masking is deterministic, so the same input always redacts to the same text;
finding fingerprints are computed from the scanner's original values before
redaction, so deduplication is unchanged.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

MASK = "***REDACTED***"

_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"
    r"|credentials?|auth)$",
    re.IGNORECASE,
)

# Words that make a key name a secret's (the key may carry a prefix such as
# ``aws_`` or ``db.``: ``aws_secret_access_key``, ``GITHUB_TOKEN``).
_KEY_WORDS = (
    r"password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|secret[_-]?key|private[_-]?key|client[_-]?secret|account[_-]?key"
    r"|shared[_-]?access[_-]?key|credentials?"
)
_TOKENS = "|".join(
    (
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}\b",
        r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
        r"\bgithub_pat_[A-Za-z0-9_]{40,}\b",
        r"\bgl(?:pat|dt|rt|ptt|ft|cbt|soat|imt)-[A-Za-z0-9_-]{20,}",
        r"\bGR1348941[A-Za-z0-9_-]{20,}",
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
        r"\bxapp-\d-[A-Za-z0-9-]{10,}",
        r"\bhooks\.slack\.com/services/[A-Za-z0-9/_-]+",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}\b",
        r"\bAIza[0-9A-Za-z_-]{35}\b",
        r"\bnpm_[A-Za-z0-9]{36}\b",
        r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{40,}",
        r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b",
        r"\bsk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{32,}",
    )
)
# One alternation, so a string is scanned once: most strings hold no secret,
# and ingest redacts every new finding's texts.
_ANY = re.compile(
    # A PEM private key, to its END line or, cut off, to the end of the text.
    r"(?P<pem>-----BEGIN (?P<kind>[A-Z0-9 ]*?)PRIVATE KEY(?: BLOCK)?-----"
    r"(?s:.*?)(?:-----END [A-Z0-9 ]*?PRIVATE KEY(?: BLOCK)?-----|\Z))"
    # user:password@ in a URL.
    r"|(?<=://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s/]+)(?=@)"
    # Authorization headers and bearer tokens.
    r"|(?P<auth>(?i:authorization)[\"']?[ \t]*[:=][ \t]*[\"']?(?:(?i:basic|bearer|token)[ \t]+)?)"
    r"[^\s\"',;]+"
    r"|(?P<bearer>\b(?i:bearer)[ \t]+)(?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{16,}=*"
    # key=value, key: value, "key": "value", ?key=value whose key names a secret.
    r"|(?P<key>\b(?:[A-Za-z0-9]+[_.-])*(?i:" + _KEY_WORDS + r")[\"']?[ \t]*[=:][ \t]*)"
    r"(?:\"(?P<dq>[^\"\n]*)\"|'(?P<sq>[^'\n]*)'|(?P<bare>[^\s\"',;&<>]+))"
    r"|(?P<tok>" + _TOKENS + r")"
)


#: Lower-case text every match of ``_ANY`` contains (the key words, the URL
#: and header markers, each token format's prefix). Testing them with ``in``
#: costs ~2 us per string; the full pattern ~15 us, and most strings hold none.
_TRIGGERS = (
    "key", "pass", "pwd", "secret", "token", "credential", "://", "authorization", "bearer",
    "akia", "asia", "agpa", "aida", "aroa", "aipa", "anpa", "anva", "abia", "acca",
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "gldt-", "glrt-", "glptt-",
    "glft-", "glcbt-", "glsoat-", "glimt-", "gr1348941", "xox", "xapp-", "eyj", "k_live_",
    "k_test_", "aiza", "npm_", "pypi-", "sg.", "sk-", "hooks.slack",
)  # fmt: skip


def _mask(match: re.Match[str]) -> str:
    if match.group("pem") is not None:
        kind = match.group("kind") or ""
        return f"-----BEGIN {kind}PRIVATE KEY-----{MASK}-----END {kind}PRIVATE KEY-----"
    if match.group("pw") is not None:
        return f"{match.group('user')}:{MASK}"
    if match.group("auth") is not None:
        return f"{match.group('auth')}{MASK}"
    if match.group("bearer") is not None:
        return f"{match.group('bearer')}{MASK}"
    if match.group("key") is not None:
        key = match.group("key")
        if match.group("dq") is not None:
            return f'{key}"{MASK}"'
        if match.group("sq") is not None:
            return f"{key}'{MASK}'"
        return f"{key}{MASK}"
    return MASK


def redact_text(value: str) -> str:
    """``value`` with every secret it quotes replaced by ``MASK``."""
    if len(value) <= _CACHED_CHARS:
        return _redact_short(value)
    return _redact_text(value)


def redact_texts(values: list[str]) -> list[str]:
    """:func:`redact_text` of each value, faster for many short texts: the
    literal pre-check runs once over all of them, then each text is tested
    only for the trigger words that occur somewhere in the batch."""
    joined = "\x00".join(values).lower()
    present = [trigger for trigger in _TRIGGERS if trigger in joined]
    if not present:
        return list(values)
    out: list[str] = []
    for value in values:
        low = value.lower()
        for trigger in present:
            if trigger in low:
                out.append(redact_text(value))  # cached: snippets repeat
                break
        else:
            out.append(value)
    return out


def _redact_text(value: str) -> str:
    low = value.lower()
    for trigger in _TRIGGERS:
        if trigger in low:
            return _ANY.sub(_mask, value)
    return value


#: Reports repeat short texts (a rule's message, a path, a snippet) across
#: thousands of findings: short ones are redacted once. Long ones are not
#: kept, so the cache stays small.
_CACHED_CHARS = 512
_redact_short = lru_cache(maxsize=8192)(_redact_text)


@lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def redact(value: Any) -> Any:
    """Return a copy of ``value`` with secrets masked (dicts, lists, strings)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and item and _secret_key(key):
                out[key] = MASK
            elif isinstance(item, str):
                out[key] = redact_text(item)
            elif isinstance(item, dict | list | tuple):
                out[key] = redact(item)
            else:
                out[key] = item
        return out
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
