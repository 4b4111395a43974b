"""Pull/merge requests on GitHub, GitLab and Gitea/Forgejo through their REST APIs.

One small client per forge behind :class:`Forge`: open a request, edit its
title and body, read its state (open, closed unmerged, merged), comment and
close it, add labels, and read the CI status of a commit. Base URL and token
come from ``JUPITER_<FORGE>_URL`` and ``JUPITER_<FORGE>_TOKEN`` (the URL
defaults to the public host); the token is sent in the forge's own header
and never printed, stored or audited: every message this module raises
passes through :func:`jupiter.redact.redact_text` and names the variable,
not the value.

Errors are one sentence each (:class:`jupiter.errors.InputError`, exit 2):
401/403 name the token variable, 404 the repository, and 429 (or GitHub's
403 with ``X-RateLimit-Remaining: 0``) waits as ``Retry-After`` or
``X-RateLimit-Reset`` say, at most ``max_wait`` seconds in all, then gives up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from jupiter.errors import InputError
from jupiter.redact import redact_text

FORGES = ("github", "gitlab", "gitea")
DEFAULT_URLS = {
    "github": "https://api.github.com",
    "gitlab": "https://gitlab.com",
    "gitea": "https://gitea.com",
}
_NAMES = {"github": "GitHub", "gitlab": "GitLab", "gitea": "Gitea"}
MAX_WAIT = 60.0  # seconds a rate limit may hold one call up, in all


@dataclass
class PullInfo:
    """What Jupiter needs to know about one pull/merge request."""

    number: int
    url: str
    state: str  # open | closed | merged
    head_sha: str | None = None


@dataclass
class CiStatus:
    """The combined CI verdict on one commit: success, failure or pending
    (None when the forge reports nothing for it)."""

    status: str | None
    checks: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "checks": self.checks}


def env_names(forge: str) -> tuple[str, str]:
    upper = forge.upper()
    return f"JUPITER_{upper}_URL", f"JUPITER_{upper}_TOKEN"


def check_repo(forge: str, repo: str) -> str:
    if forge not in FORGES:
        raise InputError(f"unknown forge {forge!r}; use one of: {', '.join(FORGES)}")
    parts = repo.strip().strip("/").split("/")
    if len(parts) < 2 or any(not p or p in (".", "..") or p.startswith("-") for p in parts):
        raise InputError(f"--repo {repo!r} is not OWNER/NAME (GitLab also takes GROUP/SUB/NAME)")
    if forge != "gitlab" and len(parts) != 2:
        raise InputError(f"--repo {repo!r} is not OWNER/NAME")
    return "/".join(parts)


def _combine(states: list[str]) -> str | None:
    if not states:
        return None
    if any(s == "failure" for s in states):
        return "failure"
    if any(s == "pending" for s in states):
        return "pending"
    return "success"


class Forge:
    """Base: HTTP plumbing, error sentences and rate-limit waits."""

    kind = ""
    api_prefix = ""

    def __init__(
        self,
        repo: str,
        *,
        base_url: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        max_wait: float = MAX_WAIT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.repo = check_repo(self.kind, repo)
        url_var, token_var = env_names(self.kind)
        self.token_var = token_var
        self.base_url = (base_url or os.environ.get(url_var) or DEFAULT_URLS[self.kind]).rstrip("/")
        secret = token if token is not None else os.environ.get(token_var, "")
        if not secret.strip():
            raise InputError(
                f"no {_NAMES[self.kind]} token: set {token_var} to a token that may push and "
                "open pull requests in " + self.repo
            )
        self._token = secret.strip()
        self.max_wait = max_wait
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=self.base_url + self.api_prefix,
            timeout=timeout,
            headers={**self._auth_headers(), "User-Agent": "jupiter-remediation"},
            follow_redirects=False,
        )

    @property
    def name(self) -> str:
        return _NAMES[self.kind]

    def close_client(self) -> None:
        self._client.close()

    def __enter__(self) -> Forge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_client()

    def _auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    # -- HTTP ----------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        waited = 0.0
        while True:
            try:
                resp = self._client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise InputError(
                    f"could not reach {self.name} at {self.base_url} "
                    f"({redact_text(type(exc).__name__ + ': ' + str(exc))}); check "
                    f"{env_names(self.kind)[0]} and the network"
                ) from None
            delay = self._rate_limited(resp)
            if delay is None:
                break
            if waited + delay > self.max_wait:
                raise InputError(
                    f"{self.name} rate-limited Jupiter (HTTP {resp.status_code}) and asks to wait "
                    f"{delay:.0f} s more, beyond the {self.max_wait:.0f} s Jupiter waits; "
                    "run again later"
                )
            self._sleep(delay)
            waited += delay
        if resp.status_code in (401, 403):
            raise InputError(
                f"{self.name} refused the token in {self.token_var} (HTTP {resp.status_code} on "
                f"{method} {self.api_prefix}{path}); set {self.token_var} to a token that may "
                f"push and open pull requests in {self.repo}"
            )
        if resp.status_code == 404:
            raise InputError(
                f"{self.name} at {self.base_url} does not know the repository {self.repo!r} "
                f"(HTTP 404 on {method} {self.api_prefix}{path}); check --repo and that the "
                f"token in {self.token_var} can see it"
            )
        if resp.status_code >= 400:
            raise InputError(
                f"{self.name} answered HTTP {resp.status_code} to {method} "
                f"{self.api_prefix}{path}: {self._message(resp)}"
            )
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise InputError(
                f"{self.name} answered {method} {self.api_prefix}{path} with something that is "
                f"not JSON; check {env_names(self.kind)[0]} points at the API"
            ) from None

    def _rate_limited(self, resp: httpx.Response) -> float | None:
        limited = resp.status_code == 429 or (
            resp.status_code == 403 and resp.headers.get("x-ratelimit-remaining") == "0"
        )
        if not limited:
            return None
        after = resp.headers.get("retry-after")
        if after is not None:
            try:
                return max(0.0, float(after))
            except ValueError:
                pass
        reset = resp.headers.get("x-ratelimit-reset") or resp.headers.get("ratelimit-reset")
        if reset is not None:
            try:
                value = float(reset)
            except ValueError:
                value = 60.0
            # An epoch (GitHub, GitLab) or a number of seconds (Gitea, drafts).
            return max(0.0, value - time.time()) if value > 1e9 else max(0.0, value)
        return 60.0

    @staticmethod
    def _message(resp: httpx.Response) -> str:
        try:
            data = resp.json()
        except ValueError:
            return redact_text(resp.text[:200].strip() or resp.reason_phrase)
        if isinstance(data, dict):
            parts = [str(data.get("message") or data.get("error") or "")]
            errors = data.get("errors")
            if isinstance(errors, list):
                parts += [
                    str(e.get("message") or e) if isinstance(e, dict) else str(e) for e in errors
                ]
            return redact_text("; ".join(p for p in parts if p)[:300] or resp.reason_phrase)
        return redact_text(str(data)[:300])

    # -- the interface -------------------------------------------------------

    def check(self) -> None:
        """Prove the token is accepted and the repository exists (one GET),
        before anything is pushed."""
        self._call("GET", self._repo_path())

    def _repo_path(self) -> str:
        raise NotImplementedError

    def open(self, head: str, base: str, title: str, body: str) -> PullInfo:
        raise NotImplementedError

    def update(self, number: int, title: str, body: str) -> None:
        raise NotImplementedError

    def get(self, number: int) -> PullInfo:
        raise NotImplementedError

    def comment(self, number: int, body: str) -> None:
        raise NotImplementedError

    def close(self, number: int, comment: str) -> None:
        raise NotImplementedError

    def add_labels(self, number: int, labels: list[str]) -> list[str]:
        """Add ``labels``; returns those the forge took."""
        raise NotImplementedError

    def ci(self, number: int, sha: str) -> CiStatus:
        raise NotImplementedError


class GitHub(Forge):
    kind = "github"

    def _auth_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }

    def _repo_path(self) -> str:
        return self._r

    @property
    def _r(self) -> str:
        return f"/repos/{self.repo}"

    def _info(self, data: dict[str, Any]) -> PullInfo:
        state = "merged" if data.get("merged") or data.get("merged_at") else str(data["state"])
        return PullInfo(
            int(data["number"]), str(data.get("html_url", "")), state, data["head"].get("sha")
        )

    def open(self, head: str, base: str, title: str, body: str) -> PullInfo:
        data = self._call(
            "POST",
            f"{self._r}/pulls",
            json={"title": title, "head": head, "base": base, "body": body},
        )
        return self._info(data)

    def update(self, number: int, title: str, body: str) -> None:
        self._call("PATCH", f"{self._r}/pulls/{number}", json={"title": title, "body": body})

    def get(self, number: int) -> PullInfo:
        return self._info(self._call("GET", f"{self._r}/pulls/{number}"))

    def comment(self, number: int, body: str) -> None:
        self._call("POST", f"{self._r}/issues/{number}/comments", json={"body": body})

    def close(self, number: int, comment: str) -> None:
        self.comment(number, comment)
        self._call("PATCH", f"{self._r}/pulls/{number}", json={"state": "closed"})

    def add_labels(self, number: int, labels: list[str]) -> list[str]:
        data = self._call("POST", f"{self._r}/issues/{number}/labels", json={"labels": labels})
        return [str(item.get("name")) for item in data or [] if isinstance(item, dict)]

    def ci(self, number: int, sha: str) -> CiStatus:
        combined = self._call("GET", f"{self._r}/commits/{sha}/status")
        checks: list[dict[str, str]] = []
        states: list[str] = []
        for st in combined.get("statuses") or []:
            value = {"success": "success", "pending": "pending"}.get(st.get("state"), "failure")
            checks.append({"name": str(st.get("context", "")), "status": value})
            states.append(value)
        runs = self._call("GET", f"{self._r}/commits/{sha}/check-runs")
        for run in runs.get("check_runs") or []:
            if run.get("status") != "completed":
                value = "pending"
            elif run.get("conclusion") in ("success", "neutral", "skipped"):
                value = "success"
            else:
                value = "failure"
            checks.append({"name": str(run.get("name", "")), "status": value})
            states.append(value)
        return CiStatus(_combine(states), checks)


class GitLab(Forge):
    kind = "gitlab"
    api_prefix = "/api/v4"

    def _auth_headers(self) -> dict[str, str]:
        return {"PRIVATE-TOKEN": self._token}

    def _repo_path(self) -> str:
        return self._r

    @property
    def _r(self) -> str:
        return f"/projects/{quote(self.repo, safe='')}"

    def _info(self, data: dict[str, Any]) -> PullInfo:
        state = {"opened": "open", "merged": "merged"}.get(str(data.get("state")), "closed")
        return PullInfo(int(data["iid"]), str(data.get("web_url", "")), state, data.get("sha"))

    def open(self, head: str, base: str, title: str, body: str) -> PullInfo:
        data = self._call(
            "POST",
            f"{self._r}/merge_requests",
            json={
                "source_branch": head,
                "target_branch": base,
                "title": title,
                "description": body,
            },
        )
        return self._info(data)

    def update(self, number: int, title: str, body: str) -> None:
        self._call(
            "PUT",
            f"{self._r}/merge_requests/{number}",
            json={"title": title, "description": body},
        )

    def get(self, number: int) -> PullInfo:
        return self._info(self._call("GET", f"{self._r}/merge_requests/{number}"))

    def comment(self, number: int, body: str) -> None:
        self._call("POST", f"{self._r}/merge_requests/{number}/notes", json={"body": body})

    def close(self, number: int, comment: str) -> None:
        self.comment(number, comment)
        self._call("PUT", f"{self._r}/merge_requests/{number}", json={"state_event": "close"})

    def add_labels(self, number: int, labels: list[str]) -> list[str]:
        data = self._call(
            "PUT", f"{self._r}/merge_requests/{number}", json={"add_labels": ",".join(labels)}
        )
        return [str(label) for label in (data or {}).get("labels", [])]

    def ci(self, number: int, sha: str) -> CiStatus:
        data = self._call("GET", f"{self._r}/pipelines", params={"sha": sha, "per_page": 1})
        if not data:
            return CiStatus(None)
        pipe = data[0]
        raw = str(pipe.get("status", ""))
        if raw == "success":
            value = "success"
        elif raw in ("failed", "canceled"):
            value = "failure"
        elif raw == "skipped":
            value = "success"
        else:
            value = "pending"
        return CiStatus(value, [{"name": f"pipeline {pipe.get('id')}", "status": value}])


class Gitea(GitHub):
    """Gitea and Forgejo: GitHub's resource paths and bodies under ``/api/v1``;
    their own token header, merge flag, label ids and commit status."""

    kind = "gitea"
    api_prefix = "/api/v1"

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self._token}"}

    def _info(self, data: dict[str, Any]) -> PullInfo:
        state = "merged" if data.get("merged") else str(data.get("state", "open"))
        head = data.get("head") or {}
        return PullInfo(int(data["number"]), str(data.get("html_url", "")), state, head.get("sha"))

    def add_labels(self, number: int, labels: list[str]) -> list[str]:
        # Gitea labels are ids; only labels the repository already has are added.
        known = self._call("GET", f"{self._r}/labels", params={"limit": 50}) or []
        ids = {str(item["name"]).lower(): int(item["id"]) for item in known}
        wanted = [ids[name.lower()] for name in labels if name.lower() in ids]
        if not wanted:
            return []
        data = self._call("POST", f"{self._r}/issues/{number}/labels", json={"labels": wanted})
        return [str(item.get("name")) for item in data or [] if isinstance(item, dict)]

    def ci(self, number: int, sha: str) -> CiStatus:
        data = self._call("GET", f"{self._r}/commits/{sha}/status")
        checks: list[dict[str, str]] = []
        states: list[str] = []
        for st in data.get("statuses") or []:
            raw = st.get("status") or st.get("state")
            value = {"success": "success", "pending": "pending", "warning": "success"}.get(
                str(raw), "failure"
            )
            checks.append({"name": str(st.get("context", "")), "status": value})
            states.append(value)
        return CiStatus(_combine(states), checks)


_CLASSES: dict[str, type[Forge]] = {"github": GitHub, "gitlab": GitLab, "gitea": Gitea}


def open_forge(kind: str, repo: str, **kwargs: Any) -> Forge:
    """The client for ``kind`` (github, gitlab, gitea) and ``repo`` (OWNER/NAME)."""
    if kind not in _CLASSES:
        raise InputError(f"unknown forge {kind!r}; use one of: {', '.join(FORGES)}")
    return _CLASSES[kind](repo, **kwargs)


__all__ = ["FORGES", "CiStatus", "Forge", "PullInfo", "check_repo", "env_names", "open_forge"]
