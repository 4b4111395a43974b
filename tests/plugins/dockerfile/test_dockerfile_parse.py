"""The Dockerfile parser and the dockerfile-hardening checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jupiter.errors import InputError
from jupiter.models import Category, Severity
from jupiter.plugins.dockerfile import detect as checks
from jupiter.plugins.dockerfile.fix import DockerfileHardening, base_family
from jupiter.plugins.dockerfile.parse import parse, split_image
from jupiter.targets.local import LocalTarget

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "docker"
PLUGIN = DockerfileHardening()


def test_continuations_heredocs_and_directives() -> None:
    df = parse("Dockerfile", (FIXTURES / "rhel" / "Dockerfile").read_text())
    assert [(i.keyword, i.start_line, i.end_line) for i in df.instructions] == [
        ("FROM", 2, 2),
        ("RUN", 3, 6),
        ("COPY", 7, 9),
        ("ADD", 10, 10),
        ("CMD", 11, 11),
    ]
    assert df.instructions[1].heredocs == ("EOF",)
    assert df.instructions[3].spelled == "add"
    debian = parse("Dockerfile", (FIXTURES / "debian" / "Dockerfile").read_text())
    run = debian.instructions[3]
    assert (run.keyword, run.start_line, run.end_line) == ("RUN", 7, 10)
    assert "libpq for psycopg" not in run.args  # comment inside a continuation is dropped
    env = debian.instructions[1]
    assert env.args == "PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1"


def test_escape_directive_backtick() -> None:
    df = parse(
        "Dockerfile",
        "# escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022\n"
        "RUN dir `\n    c:\\\\\nUSER ContainerUser\n",
    )
    assert [(i.keyword, i.end_line) for i in df.instructions] == [
        ("FROM", 2),
        ("RUN", 4),
        ("USER", 5),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "FROM alpine:3.20\nRUNN apk add curl\n",
            r"^Dockerfile line 2: unknown instruction 'RUNN'",
        ),
        (
            "FROM alpine:3.20\nRUN echo a \\\n  b\nnonsense here\n",
            r"^Dockerfile line 4: unknown instruction 'nonsense'",
        ),
        ("RUN echo hi\nFROM alpine:3.20\n", r"^Dockerfile line 1: RUN comes before the first FROM"),
        ("FROM alpine:3.20\nRUN <<EOF\necho hi\n", r"^Dockerfile line 2: heredoc <<EOF is never"),
        ("# just a comment\n", r"^Dockerfile has no FROM instruction"),
        ("FROM --platform=linux/amd64\n", r"^Dockerfile line 1: FROM names no image"),
    ],
)
def test_parse_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse("Dockerfile", text)


def test_detect_per_family(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES, tmp_path / "repo")
    findings = PLUGIN.detect(LocalTarget(tmp_path / "repo"))
    assert all(f.category is Category.IAC_DOCKER for f in findings)
    got = {(f.location.path, f.rule_id, f.location.start_line) for f in findings}
    assert ("alpine/Dockerfile", "DOCKER-ROOT-USER", 11) in got  # no USER: the final FROM
    assert ("debian/Dockerfile", "DOCKER-ROOT-USER", 16) in got  # the last USER root
    assert ("alpine/Dockerfile", "DOCKER-ADD", 13) in got
    assert ("distroless/Dockerfile", "DOCKER-IMAGE-LATEST", 6) in got
    # The Alpine image has a HEALTHCHECK; the builder stage's USER never matters.
    assert not any(p == "alpine/Dockerfile" and r == "DOCKER-NO-HEALTHCHECK" for p, r, _ in got)
    root = next(f for f in findings if f.rule_id == "DOCKER-ROOT-USER")
    assert root.severity is Severity.HIGH and root.identity == "final-stage"
    assert root.extra["checkov"] == ["CKV_DOCKER_3", "CKV_DOCKER_8"]


def test_final_stage_inherits_user_from_the_stage_it_builds_on(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        'FROM node:20 AS base\nUSER node\nHEALTHCHECK NONE\n\nFROM base AS prod\nCMD ["node"]\n'
    )
    (tmp_path / "Containerfile").write_text(
        "FROM node:20 AS build\nUSER node\nFROM node:20-alpine\nHEALTHCHECK NONE\n"
    )
    findings = PLUGIN.detect(LocalTarget(tmp_path))
    assert {(f.location.path, f.rule_id) for f in findings} == {
        ("Containerfile", "DOCKER-ROOT-USER")
    }


def test_broken_dockerfile_is_skipped_by_detect_and_reported() -> None:
    result = checks.scan(
        _View(
            {
                "a/Dockerfile": b"FROM x:1\nFORM y\n",
                "b/Dockerfile": b"FROM alpine:3.20\nUSER 1000\n",
            }
        )
    )
    assert [str(e).split(":")[0] for e in result.errors] == ["a/Dockerfile line 2"]
    assert {f.location.path for f in result.findings} == {"b/Dockerfile"}


@pytest.mark.parametrize(
    ("image", "family"),
    [
        ("alpine:3.20", "alpine"),
        ("python:3.12-alpine3.20", "alpine"),
        ("busybox:1.36", "alpine"),
        ("python:3.12-slim", "debian"),
        ("debian:bookworm", "debian"),
        ("ubuntu:24.04", "debian"),
        ("docker.io/library/node:20", "debian"),
        ("registry.access.redhat.com/ubi9/ubi:9.4", "rhel"),
        ("registry.access.redhat.com/ubi9/ubi-minimal:9.4", "unknown"),
        ("gcr.io/distroless/static-debian12:nonroot", "distroless"),
        ("cgr.dev/chainguard/static", "distroless"),
        ("scratch", "unknown"),
        ("ghcr.io/acme/base:1", "unknown"),
    ],
)
def test_base_family(image: str, family: str) -> None:
    assert base_family(image) == family


def test_split_image() -> None:
    assert split_image("localhost:5000/a/b:1.2@sha256:ff") == (
        "localhost:5000/a/b",
        "1.2",
        "sha256:ff",
    )
    assert split_image("localhost:5000/a/b") == ("localhost:5000/a/b", "", "")


class _View:
    """A read-only in-memory view (detect needs walk and read_bytes only)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def describe(self) -> str:
        return "memory"

    def read_bytes(self, path: str) -> bytes:
        return self.files[path]

    def stat(self, path: str) -> None:
        return None

    def glob(self, pattern: str) -> list[str]:
        return []

    def walk(self, under: str = "") -> list[str]:
        return sorted(self.files)
