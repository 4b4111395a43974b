"""Secrets quoted by scanner reports never reach the database or any output,
and redaction does not change deduplication."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from pathlib import Path

import pytest
from tests.conftest import run_cli

from jupiter.ingest import parse_report
from jupiter.redact import MASK, redact, redact_text

# A private key body that exists nowhere else: any line of it in an output is a leak.
_BODY = [base64.b64encode(os.urandom(48)).decode() for _ in range(6)]
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(_BODY) + "\n-----END RSA PRIVATE KEY-----"
)
URL_PASSWORD = "Tr0ub4dor-" + os.urandom(6).hex()
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0" * 2
AWS_KEY_ID = "AKIA" + "QWERTYUIOPASDFGH"
LEAKS = [*_BODY, URL_PASSWORD, GITHUB_TOKEN, AWS_KEY_ID]


def _report(path: Path) -> Path:
    results = [
        {
            "ruleId": "generic-private-key",
            "level": "error",
            "message": {"text": "Private key committed to the repository"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": "deploy/id_rsa"},
                        "region": {"startLine": 1, "snippet": {"text": PRIVATE_KEY}},
                    }
                }
            ],
        },
        {
            "ruleId": "url-password",
            "level": "warning",
            "message": {
                "text": f"Password in URL postgresql://app:{URL_PASSWORD}@db.internal/prod\n"
                f"also {GITHUB_TOKEN}"
            },
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": "settings.py"},
                        "region": {
                            "startLine": 7,
                            "snippet": {
                                "text": f'DB = "postgresql://app:{URL_PASSWORD}@db.internal/prod"'
                                f"  # key {AWS_KEY_ID}"
                            },
                        },
                    }
                }
            ],
        },
    ]
    doc = {
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "gitleaks"}}, "results": results}],
    }
    path.write_text(json.dumps(doc))
    return path


def _no_leak(text: str, what: str) -> None:
    for secret in LEAKS:
        assert secret not in text, f"{what} shows {secret[:12]}..."


def test_report_secrets_are_redacted_everywhere(tmp_path: Path) -> None:
    report = _report(tmp_path / "leaks.sarif")
    home = tmp_path / "ws"
    done = run_cli("ingest", "--json", "--asset", "repo", str(report), home=home)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["new_findings"] == 2

    # The rows themselves, read with plain sqlite3: every column of every table.
    with sqlite3.connect(home / "jupiter.db") as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = "\n".join(
            repr(row) for table in tables for row in conn.execute(f'SELECT * FROM "{table}"')
        )
    _no_leak(dump, "the database")
    assert MASK in dump
    assert "-----BEGIN RSA PRIVATE KEY-----" in dump  # the kind of secret stays visible

    listed = run_cli("findings", "list", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    _no_leak(listed.stdout, "findings list --json")
    findings = {f["rule_id"]: f for f in json.loads(listed.stdout)}
    assert MASK in findings["generic-private-key"]["evidence"]
    assert findings["url-password"]["title"] == (
        f"Password in URL postgresql://app:{MASK}@db.internal/prod"
    )
    for args in (["--json"], []):
        for finding in findings.values():
            shown = run_cli("findings", "show", str(finding["id"]), *args, home=home)
            assert shown.returncode == 0, shown.stderr
            _no_leak(shown.stdout + shown.stderr, f"findings show {' '.join(args)}")
    table = run_cli("findings", "list", home=home)
    _no_leak(table.stdout, "findings list")
    for fmt in ("jsonl", "cef"):
        exported = run_cli("audit", "export", "--format", fmt, home=home)
        assert exported.returncode == 0, exported.stderr
        _no_leak(exported.stdout, f"audit export {fmt}")

    # Deduplication is unchanged: the fingerprint is the one of the raw record,
    # and ingesting the report again finds both findings again.
    raw = {r.rule_id: r.fingerprint("repo") for r in parse_report(report)}
    assert {f["rule_id"]: f["fingerprint"] for f in findings.values()} == raw
    again = run_cli("ingest", "--json", "--asset", "repo", str(report), home=home)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["new_findings"] == 0
    assert json.loads(again.stdout)["existing_findings"] == 2


def test_rows_stored_before_redaction_are_redacted_on_output(tmp_path: Path) -> None:
    """A workspace filled by an older Jupiter still prints no secret."""
    report = _report(tmp_path / "leaks.sarif")
    home = tmp_path / "ws"
    assert run_cli("ingest", "--asset", "repo", str(report), home=home).returncode == 0
    with sqlite3.connect(home / "jupiter.db") as conn:
        conn.execute("UPDATE findings SET evidence = ?, title = ?", (PRIVATE_KEY, URL_PASSWORD))
    listed = run_cli("findings", "list", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    assert all(secret not in listed.stdout for secret in _BODY)
    assert all(f["evidence"].count(MASK) == 1 for f in json.loads(listed.stdout))


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        # The key is generated per process: a fixed id keeps pytest-xdist's
        # workers collecting the same tests.
        pytest.param(PRIVATE_KEY, _BODY[3], id="pem-private-key"),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA",
            "b3BlbnNzaC1rZXktdjEAAAAA",
        ),
        (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF0\n-----END PGP PRIVATE KEY BLOCK-----",
            "lQOYBF0",
        ),
        ("redis://:s3cr3tpass@cache:6379/0", "s3cr3tpass"),
        ("https://deploy:hunter2@git.example.com/repo.git", "hunter2"),
        ("GET /api?access_token=abc123def456&page=2", "abc123def456"),
        ('aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', "wJalrXUtnFEMI"),
        ('{"password": "correct horse battery staple"}', "correct horse"),
        ("DB_PASSWORD=pa55w0rd!", "pa55w0rd!"),
        ("Possible hardcoded password: 'hunter2'", "hunter2"),
        ("client_secret: 9f8e7d6c5b4a", "9f8e7d6c5b4a"),
        (f"key {AWS_KEY_ID}", AWS_KEY_ID),
        (f"token {GITHUB_TOKEN}", GITHUB_TOKEN),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ",
            "11ABCDEFG",
        ),
        ("glpat-xYz0123456789abcdefGH", "xYz0123456789"),
        ("slack xoxb-123456789012-1234567890123-AbCdEfGhIjKl", "AbCdEfGhIjKl"),
        ("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX", "XXXXXXXXXXXX"),
        ("Authorization: Bearer 0123456789abcdefABCDEF", "0123456789abcdef"),
        ("curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA=='", "dXNlcjpwYXNzd29yZA"),
        ("bearer abcdefghij0123456789", "abcdefghij0123456789"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9Pl",
            "dozjgNryP4J3",
        ),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
        ("AIzaSyA-1234567890abcdefghijklmnopqrstu", "AIzaSyA-1234567890"),
        ("npm_abcdefghijklmnopqrstuvwxyz0123456789", "npm_abcdefghij"),
        ("sk-proj-abcdefghijklmnopqrstuvwxyz012345678901", "abcdefghijklmnop"),
    ],
)
def test_each_secret_format_is_masked(text: str, secret: str) -> None:
    out = redact_text(text)
    assert secret not in out
    assert MASK in out
    assert redact_text(out) == out  # stable: redacting twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "Possible SQL injection vector through string-based query construction.",
        "password_encryption = scram-sha-256",
        "PasswordAuthentication no",
        "Bearer authentication is used for the API",
        "password:\n  next: value",
        "see https://example.com/docs for details",
        "The key was rotated on 2025-01-01",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_structures_mask_secret_named_keys_and_values() -> None:
    out = redact({"token": "abc", "notes": [f"url postgresql://u:{URL_PASSWORD}@h/db"], "n": 3})
    assert out == {"token": MASK, "notes": [f"url postgresql://u:{MASK}@h/db"], "n": 3}


def test_batch_redaction_equals_one_by_one() -> None:
    from jupiter.redact import redact_texts

    texts = [
        PRIVATE_KEY,
        "nothing here",
        f"postgresql://app:{URL_PASSWORD}@db/prod",
        "",
        "Possible hardcoded password: 'hunter2'",
        "a key rotated",
    ]
    assert redact_texts(texts) == [redact_text(t) for t in texts]
    assert redact_texts(["plain", "text"]) == ["plain", "text"]
