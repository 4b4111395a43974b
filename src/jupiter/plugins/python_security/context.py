"""What a value is for, judged from the names around it: the enclosing
function, the variables it is assigned to, the names in the call.

A fix that changes behaviour only where security depends on it (``random``
for a reset token, MD5 for a cache key) must not over-fix: when the names say
neither, the finding goes to a person with the words that were looked at.
"""

from __future__ import annotations

import ast
import re

SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "pass",
        "secret",
        "token",
        "nonce",
        "salt",
        "otp",
        "pin",
        "csrf",
        "xsrf",
        "session",
        "auth",
        "credential",
        "credentials",
        "apikey",
        "reset",
        "verification",
        "signature",
        "sign",
        "hmac",
        "cookie",
        "invite",
        "magic",
        "captcha",
        "activation",
        "private",
    }
)
NON_SECRET_WORDS = frozenset(
    {
        "etag",
        "cache",
        "cached",
        "checksum",
        "fingerprint",
        "dedup",
        "dedupe",
        "shard",
        "bucket",
        "partition",
        "filename",
        "file",
        "content",
        "md5sum",
        "sha1sum",
        "color",
        "colour",
        "avatar",
        "gravatar",
        "identicon",
        "hue",
        "jitter",
        "shuffle",
        "sample",
        "simulation",
        "simulate",
        "demo",
        "test",
        "dice",
        "game",
        "backoff",
        "retry",
    }
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def words(name: str) -> set[str]:
    """``reset_tokenValue`` -> {reset, token, value}."""
    return {w.lower() for part in name.split("_") for w in _CAMEL.split(part) if w}


def names_at(tree: ast.Module, line: int) -> set[str]:
    """Identifiers that say what the expression on ``line`` is for."""
    found: set[str] = set()
    for node in ast.walk(tree):
        start = getattr(node, "lineno", None)
        end = getattr(node, "end_lineno", None)
        if start is None or end is None or not start <= line <= end:
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        found.add(sub.id)
                    elif isinstance(sub, ast.Attribute):
                        found.add(sub.attr)
        elif isinstance(node, ast.Return | ast.Call | ast.keyword) and start == line:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name):
                    found.add(sub.id)
                elif isinstance(sub, ast.keyword) and sub.arg:
                    found.add(sub.arg)
    return found


def judge(tree: ast.Module, line: int) -> tuple[str, list[str]]:
    """``("secret" | "not_secret" | "unknown", the words that decided)``.
    A secret word wins over a non-secret one: a cache of password hashes is
    still password hashing."""
    all_words: set[str] = set()
    for name in names_at(tree, line):
        all_words |= words(name)
    secret = sorted(all_words & SECRET_WORDS)
    if secret:
        return "secret", secret
    benign = sorted(all_words & NON_SECRET_WORDS)
    if benign:
        return "not_secret", benign
    return "unknown", sorted(all_words)
