"""Generators of realistic scanner reports for the ingest benchmarks.

``write_sarif(path, n)`` writes one SARIF 2.1.0 run with ``n`` results spread
over a handful of rules (SQL injection, subprocess, weak hash, Kubernetes and
Dockerfile checks), many paths, varied lines and levels, snippets and
fingerprints, shaped like CodeQL/Semgrep output. It is deterministic for a
given ``n`` so numbers are comparable between runs, and no two results share
a path and line, so ``n`` results are ``n`` distinct findings.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

_RULES: list[dict[str, Any]] = [
    {
        "id": "py/sql-injection",
        "name": "SqlInjection",
        "shortDescription": {"text": "SQL query built from user-controlled sources"},
        "defaultConfiguration": {"level": "error"},
        "properties": {
            "tags": ["security", "external/cwe/cwe-089"],
            "security-severity": "8.8",
            "precision": "high",
        },
    },
    {
        "id": "py/command-line-injection",
        "name": "CommandInjection",
        "shortDescription": {"text": "Uncontrolled command line"},
        "defaultConfiguration": {"level": "error"},
        "properties": {
            "tags": ["security", "external/cwe/cwe-078", "external/cwe/cwe-088"],
            "security-severity": "9.8",
        },
    },
    {
        "id": "py/weak-sensitive-data-hashing",
        "name": "WeakSensitiveDataHashing",
        "shortDescription": {"text": "Use of a broken or weak cryptographic hashing algorithm"},
        "defaultConfiguration": {"level": "warning"},
        "properties": {"tags": ["security", "external/cwe/cwe-327"], "security-severity": "7.5"},
    },
    {
        "id": "py/clear-text-logging-sensitive-data",
        "name": "CleartextLogging",
        "shortDescription": {"text": "Clear-text logging of sensitive information"},
        "defaultConfiguration": {"level": "warning"},
        "properties": {"tags": ["security", "external/cwe/cwe-312"], "security-severity": "5.3"},
    },
    {
        "id": "py/unused-import",
        "name": "UnusedImport",
        "shortDescription": {"text": "Unused import"},
        "defaultConfiguration": {"level": "note"},
        "properties": {"tags": ["maintainability"]},
    },
    {
        "id": "CKV_K8S_16",
        "name": "Container should not be privileged",
        "shortDescription": {"text": "Container should not be privileged"},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["kubernetes"]},
    },
    {
        "id": "CKV_DOCKER_3",
        "name": "Ensure that a user for the container has been created",
        "shortDescription": {"text": "Ensure that a user for the container has been created"},
        "defaultConfiguration": {"level": "warning"},
        "properties": {"tags": ["dockerfile"]},
    },
]

_DIRS = ["app", "app/api", "app/models", "services/billing", "services/auth", "lib", "tools"]
_FILES = ["views.py", "db.py", "handlers.py", "utils.py", "models.py", "tasks.py", "admin.py"]
_LEVELS = ["error", "warning", "note", None]
_SNIPPETS = [
    "cur.execute(\"SELECT * FROM users WHERE name = '%s'\" % name)",
    "subprocess.call(cmd, shell=True)",
    "hashlib.md5(password.encode()).hexdigest()",
    'log.info("token=%s", token)',
    "import os",
    "privileged: true",
    "FROM python:3.11-slim",
]


_PATH_COUNT = len(_DIRS) * 400 * len(_FILES)


def _path(slot: int) -> str:
    d, rest = divmod(slot, 400 * len(_FILES))
    module, f = divmod(rest, len(_FILES))
    return f"{_DIRS[d]}/m{module}/{_FILES[f]}"


def _result(rng: random.Random, i: int) -> dict[str, Any]:
    rule_index = rng.randrange(len(_RULES))
    rule = _RULES[rule_index]
    # Each result gets its own (path, line), so every result is a distinct
    # issue and an ingest of n results stores n findings.
    slot, lap = i % _PATH_COUNT, i // _PATH_COUNT
    path = _path(slot)
    line = 1 + lap * 5 + rng.randrange(5)
    result: dict[str, Any] = {
        "ruleId": rule["id"],
        "ruleIndex": rule_index,
        "message": {"text": f"{rule['shortDescription']['text']} (occurrence {i})."},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": path, "uriBaseId": "%SRCROOT%", "index": i % 997},
                    "region": {
                        "startLine": line,
                        "startColumn": rng.randrange(1, 40),
                        "endLine": line + rng.randrange(0, 3),
                        "endColumn": rng.randrange(40, 120),
                        "snippet": {"text": _SNIPPETS[rule_index]},
                    },
                }
            }
        ],
        "partialFingerprints": {"primaryLocationLineHash": f"{rng.getrandbits(64):016x}:1"},
    }
    level = rng.choice(_LEVELS)
    if level is not None:
        result["level"] = level
    return result


def sarif_document(n: int, seed: int = 7) -> dict[str, Any]:
    """The SARIF document ``write_sarif`` writes, as Python data."""
    rng = random.Random(seed)
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "CodeQL",
                        "semanticVersion": "2.19.3",
                        "informationUri": "https://codeql.github.com",
                        "rules": _RULES,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": "file:///home/ci/work/shop/"}},
                "results": [_result(rng, i) for i in range(n)],
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def write_sarif(path: Path, n: int) -> None:
    """Write a realistic ``n``-result SARIF 2.1.0 file to ``path``."""
    path.write_bytes(orjson.dumps(sarif_document(n), option=orjson.OPT_INDENT_2))
