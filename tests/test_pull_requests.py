"""`jupiter fix --pull-request`: a real git repository pushing to a real bare
remote, and local fakes of the GitHub, GitLab and Gitea APIs that check
method, path, auth header and JSON shape."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select

from jupiter.engine import Engine
from jupiter.errors import ConflictError, InputError
from jupiter.forges import open_forge
from jupiter.pull_requests import PullRequestOptions
from jupiter.store.tables import AuditRow, PullRequestRow, RemediationRow, utcnow
from jupiter.workspace import Workspace
from tests.conftest import run_cli
from tests.forges import FakeForge

TOKEN = "ghp_FAKEtoken1234567890abcdefABCDEF123456"
SQLI = (
    "import sqlite3\n\n\ndef find(db, name):\n"
    "    return db.execute(\"SELECT * FROM users WHERE name = '%s'\" % name)\n"
)
REPO = {"github": "acme/app", "gitlab": "acme/team/app", "gitea": "acme/app"}


def git(cwd: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
             "GIT_CONFIG_NOSYSTEM": "1", "LANG": "C", "LC_ALL": "C"},
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"git {args} failed: {proc.stderr}")
    return proc.stdout


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "userhome"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    for name in list(os.environ):
        if name.startswith("GIT_") or (name.startswith("JUPITER_") and "_TOKEN" in name):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An app with two SQL injections in two directories, pushed to a bare remote."""
    top = tmp_path_factory.mktemp("template")
    root = top / "app"
    (root / "src" / "sub").mkdir(parents=True)
    (root / "src" / "main.py").write_text(SQLI)
    (root / "src" / "sub" / "other.py").write_text(SQLI)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Dev Eloper")
    git(root, "config", "user.email", "dev@example.org")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    git(top, "init", "-q", "--bare", "remote.git")
    git(root, "remote", "add", "origin", str(top / "remote.git"))
    git(root, "push", "-q", "origin", "main")
    return top


@pytest.fixture
def work(template: Path, tmp_path: Path) -> Path:
    shutil.copytree(template / "app", tmp_path / "app", symlinks=True)
    shutil.copytree(template / "remote.git", tmp_path / "remote.git")
    git(tmp_path / "app", "remote", "set-url", "origin", str(tmp_path / "remote.git"))
    return tmp_path / "app"


def remote_sha(work: Path, branch: str) -> str | None:
    out = git(work.parent / "remote.git", "rev-parse", "--verify", "-q", branch, check=False)
    return out.strip() or None


@pytest.fixture(params=["github", "gitlab", "gitea"])
def forge(
    request: pytest.FixtureRequest, work: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeForge]:
    kind = request.param
    fake = FakeForge(kind, REPO[kind], TOKEN, work.parent / "remote.git")
    monkeypatch.setenv(f"JUPITER_{kind.upper()}_URL", fake.url)
    monkeypatch.setenv(f"JUPITER_{kind.upper()}_TOKEN", TOKEN)
    yield fake
    fake.stop()


@pytest.fixture
def github(work: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeForge]:
    fake = FakeForge("github", "acme/app", TOKEN, work.parent / "remote.git")
    monkeypatch.setenv("JUPITER_GITHUB_URL", fake.url)
    monkeypatch.setenv("JUPITER_GITHUB_TOKEN", TOKEN)
    yield fake
    fake.stop()


@pytest.fixture
def eng(tmp_path: Path) -> Iterator[Engine]:
    e = Engine(
        Workspace(tmp_path / "home", f"sqlite:///{tmp_path / 'home' / 'j.db'}"), actor="tester"
    )
    yield e
    e.close()


def fix(eng: Engine, work: Path, kind: str, group: str = "run") -> dict[str, object]:
    opts = PullRequestOptions(kind, REPO[kind], group=group)
    return eng.fix(str(work), git_branch="jupiter/sqli", pull_request=opts)


def _prs(result: dict[str, object]) -> list[dict[str, object]]:
    prs = result["pull_requests"]
    assert isinstance(prs, list)
    return prs


def test_open_update_ci_decline_remembered(eng: Engine, work: Path, forge: FakeForge) -> None:
    kind = forge.kind
    first = fix(eng, work, kind)
    assert first["status"] == "succeeded"
    [pr] = _prs(first)
    assert pr["action"] == "opened" and pr["number"] == 1
    # The work tree is back on main, unchanged; the branch is on the remote.
    assert git(work, "branch", "--show-current").strip() == "main"
    assert (
        remote_sha(work, "jupiter/sqli")
        == pr["head"]
        == git(work, "rev-parse", "jupiter/sqli").strip()
    )
    [create] = forge.calls("POST", "/merge_requests" if kind == "gitlab" else "/pulls")
    prefix = {"github": "/repos/acme/app", "gitea": "/api/v1/repos/acme/app"}.get(
        kind, "/api/v4/projects/" + quote("acme/team/app", safe="")
    )
    assert create.path.startswith(prefix)
    auth = {"github": f"Bearer {TOKEN}", "gitea": f"token {TOKEN}"}
    if kind == "gitlab":
        assert create.headers["private-token"] == TOKEN
        assert create.body["source_branch"] == "jupiter/sqli"
        assert create.body["target_branch"] == "main"
    else:
        assert create.headers["authorization"] == auth[kind]
        assert (create.body["head"], create.body["base"]) == ("jupiter/sqli", "main")
    body = forge.pulls[1].body
    for text in ("PY-SQLI-001", "src/main.py:5", "src/sub/other.py:5", "re-detection",
                 "How to undo", "jupiter rollback", "```diff"):  # fmt: skip
        assert text in body, text
    assert set(forge.pulls[1].labels) >= {"security"}

    # Re-run on main: same branch pushed with a lease, the same PR edited.
    second = fix(eng, work, kind)
    [pr2] = _prs(second)
    assert pr2["action"] == "updated" and pr2["number"] == 1
    assert len(forge.pulls) == 1
    assert len(forge.calls("POST", "/merge_requests" if kind == "gitlab" else "/pulls")) == 1
    assert remote_sha(work, "jupiter/sqli") == pr2["head"] != pr["head"]
    assert forge.calls("PUT" if kind == "gitlab" else "PATCH")

    # CI reports on the head commit: recorded by the poll.
    forge.statuses[str(pr2["head"])] = [("tests", "success")]
    [polled] = eng.sync_pull_requests()
    assert polled.get("ci") == "success", polled
    assert polled["ci"] == "success" and polled["state"] == "open"
    [row] = eng.list_pull_requests()
    assert row["ci"] == "success" and row["state"] == "open"

    # Closed unmerged: remembered as declined, not reopened for the same findings.
    forge.pulls[1].state = "closed"
    third = fix(eng, work, kind)
    [pr3] = _prs(third)
    assert pr3["action"] == "declined_before"
    assert len(forge.pulls) == 1 and forge.pulls[1].state == "closed"
    assert remote_sha(work, "jupiter/sqli") == pr2["head"]  # not pushed again
    assert eng.list_pull_requests(state="declined")

    # The token is nowhere in the store or the audit trail.
    with eng.db.reading() as s:
        dump = " ".join(str(r.data) + r.subject for r in s.scalars(select(AuditRow)))
    assert TOKEN not in dump
    assert TOKEN not in (eng.workspace.home / "j.db").read_bytes().decode("latin-1")


def test_groups_close_when_fixed_elsewhere_and_merged_completes(
    tmp_path: Path, work: Path, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    fake = FakeForge("github", "acme/app", TOKEN, work.parent / "remote.git")
    monkeypatch.setenv("JUPITER_GITHUB_URL", fake.url)
    monkeypatch.setenv("JUPITER_GITHUB_TOKEN", TOKEN)
    eng = Engine(Workspace(tmp_path / "home", db_url), actor="tester")
    try:
        first = fix(eng, work, "github", group="directory")
        prs = {p["branch"]: p for p in _prs(first)}
        assert set(prs) == {"jupiter/sqli-src", "jupiter/sqli-src-sub"}
        assert len(fake.pulls) == 2
        # Each group's branch holds only its own fix, on top of main.
        for branch in prs:
            changed = git(work, "diff", "--name-only", "main", branch).split()
            assert changed == (["src/main.py"] if branch.endswith("-src") else ["src/sub/other.py"])
        # Someone fixes src/sub/other.py on main by hand: that PR is closed with a comment.
        (work / "src" / "sub" / "other.py").write_text("def find(db, name):\n    return None\n")
        git(work, "commit", "-qam", "remove the query")
        second = fix(eng, work, "github", group="directory")
        actions = {p["group"]: p["action"] for p in _prs(second)}
        assert actions == {
            "jupiter/sqli|directory:src": "updated",
            "jupiter/sqli|directory:src/sub": "closed_obsolete",
        }
        closed = next(p for p in fake.pulls.values() if p.head == "jupiter/sqli-src-sub")
        assert closed.state == "closed" and "no longer detects" in closed.comments[0]
        assert len(fake.pulls) == 2
        # The open one is merged: the poll records it and completes its remediation.
        with eng.db.transaction() as s:
            now = utcnow()
            rem = RemediationRow(
                status="deploying", workflow="code.sql_injection", definition={}, findings=[],
                params={}, plan_hash="x", actor="tester", facts={}, created_at=now,
                updated_at=now,
            )  # fmt: skip
            s.add(rem)
            s.flush()
            row = s.scalars(select(PullRequestRow).where(PullRequestRow.state == "open")).one()
            row.remediation_id = rem.id
            rem_id = rem.id
        opened = next(p for p in fake.pulls.values() if p.head == "jupiter/sqli-src")
        opened.state = "merged"
        [polled] = eng.sync_pull_requests()
        assert polled["state"] == "merged" and polled["remediation_completed"] == f"REM-{rem_id}"
        with eng.db.reading() as s:
            got = s.get(RemediationRow, rem_id)
            assert got is not None and got.status == "completed"
        assert eng.list_pull_requests(state="merged")
        assert eng.sync_pull_requests() == []  # nothing open is left to poll
    finally:
        eng.close()
        fake.stop()


def test_remote_branch_with_someone_elses_commits_is_never_overwritten(
    eng: Engine, work: Path, github: FakeForge
) -> None:
    git(work, "push", "-q", "origin", "main:refs/heads/jupiter/sqli")
    before = remote_sha(work, "jupiter/sqli")
    head = git(work, "rev-parse", "HEAD")
    with pytest.raises(InputError, match="commits Jupiter did not push; it was not overwritten"):
        fix(eng, work, "github")
    assert remote_sha(work, "jupiter/sqli") == before
    # Refused before the run: nothing changed locally either.
    assert git(work, "rev-parse", "HEAD") == head and not git(work, "status", "--porcelain")
    assert git(work, "branch", "--list", "jupiter/sqli") == ""
    assert github.pulls == {}
    # A request Jupiter keeps current whose branch a reviewer pushed to: the
    # next run stops before changing anything, and never overwrites it.
    git(work.parent / "remote.git", "branch", "-D", "jupiter/sqli")
    [pr] = _prs(fix(eng, work, "github"))
    git(work, "fetch", "-q", "origin", "jupiter/sqli")
    git(work, "switch", "-q", "-c", "review", "FETCH_HEAD")
    git(work, "commit", "-q", "--allow-empty", "-m", "reviewer's tweak")
    git(work, "push", "-q", "origin", "review:jupiter/sqli")
    git(work, "switch", "-q", "main")
    theirs = remote_sha(work, "jupiter/sqli")
    assert theirs != pr["head"]
    local = git(work, "rev-parse", "jupiter/sqli")
    with pytest.raises(InputError, match="commits Jupiter did not push"):
        fix(eng, work, "github")
    assert remote_sha(work, "jupiter/sqli") == theirs
    assert git(work, "rev-parse", "jupiter/sqli") == local
    assert len(github.pulls) == 1


def test_lease_refuses_a_push_that_raced_ahead(work: Path) -> None:
    from jupiter.git_delivery import GitDelivery

    gd = GitDelivery(work)
    sha = gd.head()
    gd.push("origin", sha, "race", None)
    git(work, "commit", "-q", "--allow-empty", "-m", "theirs")
    git(work, "push", "-q", "origin", "HEAD:refs/heads/race")
    theirs = remote_sha(work, "race")
    with pytest.raises(ConflictError, match="has commits Jupiter did not push"):
        gd.push("origin", sha, "race", sha)  # the lease names what we pushed, not theirs
    assert remote_sha(work, "race") == theirs


def test_no_remote_and_rejected_push(eng: Engine, work: Path, github: FakeForge) -> None:
    from jupiter.git_delivery import GitDelivery

    git(work, "remote", "remove", "origin")
    head = git(work, "rev-parse", "HEAD")
    with pytest.raises(InputError, match="has no remote 'origin'; add it with"):
        fix(eng, work, "github")
    assert git(work, "rev-parse", "HEAD") == head and not git(work, "status", "--porcelain")
    git(work, "remote", "add", "origin", str(work.parent / "remote.git"))
    hook = work.parent / "remote.git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'branch rules forbid this' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(InputError, match="rejected the push of branch 'x'"):
        GitDelivery(work).push("origin", head.strip(), "x", None)


@pytest.mark.parametrize(
    ("status", "headers", "match"),
    [
        (401, {}, "refused the token in JUPITER_GITHUB_TOKEN"),
        (403, {}, "refused the token in JUPITER_GITHUB_TOKEN"),
        (404, {}, "does not know the repository 'acme/app'"),
        (429, {"Retry-After": "3600"}, "rate-limited Jupiter"),
        (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "9999999999"}, "rate-limited"),
    ],
)
def test_forge_errors_are_one_sentence_naming_the_variable(
    tmp_path: Path, status: int, headers: dict[str, str], match: str
) -> None:
    fake = FakeForge("github", "acme/app", TOKEN, tmp_path)
    try:
        fake.script.append((status, headers))
        client = open_forge("github", "acme/app", base_url=fake.url, token=TOKEN)
        with client, pytest.raises(InputError, match=match) as err:
            client.get(1)
        assert TOKEN not in str(err.value) and "\n" not in str(err.value)
    finally:
        fake.stop()


def test_rate_limit_waits_as_told_then_succeeds(tmp_path: Path) -> None:
    fake = FakeForge("gitea", "acme/app", TOKEN, tmp_path)
    waits: list[float] = []
    try:
        fake.script += [(429, {"Retry-After": "2"}), (429, {"Retry-After": "3"})]
        bounded = open_forge(
            "gitea", "acme/app", base_url=fake.url, token=TOKEN, max_wait=4, sleep=waits.append
        )
        with bounded, pytest.raises(InputError, match="rate-limited"):
            bounded.get(1)
        assert waits == [2.0]  # 2 + 3 would pass the bound: no second wait
        fake.script += [(429, {"Retry-After": "1"})]
        waits.clear()
        client = open_forge("gitea", "acme/app", base_url=fake.url, token=TOKEN, sleep=waits.append)
        with client, pytest.raises(InputError, match="HTTP 404"):
            client.get(1)  # waited once, then the real answer: no such pull request
        assert waits == [1.0]
    finally:
        fake.stop()


def test_missing_token_names_the_variable_before_anything_changes(eng: Engine, work: Path) -> None:
    head = git(work, "rev-parse", "HEAD")
    with pytest.raises(InputError, match="set JUPITER_GITLAB_TOKEN"):
        fix(eng, work, "gitlab")
    assert git(work, "rev-parse", "HEAD") == head
    assert git(work, "branch", "--list", "jupiter/sqli") == ""


def test_unknown_forge_group_and_repo_are_refused() -> None:
    with pytest.raises(InputError, match="unknown forge 'bitbucket'"):
        PullRequestOptions("bitbucket", "a/b").check()
    with pytest.raises(InputError, match="unknown --group 'file'"):
        PullRequestOptions("github", "a/b", group="file").check()
    with pytest.raises(InputError, match="is not OWNER/NAME"):
        PullRequestOptions("github", "a/b/c").check()
    assert PullRequestOptions("gitlab", "g/sub/app/").check().repo == "g/sub/app"


def test_cli_pull_request_flow_and_a_refused_token(tmp_path: Path, work: Path) -> None:
    fake = FakeForge("github", "acme/app", TOKEN, work.parent / "remote.git")
    env = {"JUPITER_GITHUB_URL": fake.url, "JUPITER_GITHUB_TOKEN": TOKEN}
    home = tmp_path / "jhome"
    args = ["fix", str(work), "--yes", "--git-branch", "jupiter/sqli"]
    args += ["--pull-request", "github", "--repo", "acme/app"]
    try:
        ok = run_cli(*args, home=home, env=env)
        assert ok.returncode == 0, ok.stderr
        assert "pull request opened: #1" in ok.stdout and TOKEN not in ok.stdout + ok.stderr
        refused = run_cli(*args, home=home, env={**env, "JUPITER_GITHUB_TOKEN": "wrong"})
        assert refused.returncode == 2
        assert "refused the token in JUPITER_GITHUB_TOKEN" in refused.stderr
        assert "wrong" not in refused.stderr
        # Nothing lost locally: the branch Jupiter made is still there, HEAD is back on main.
        assert git(work, "branch", "--show-current").strip() == "main"
        assert git(work, "rev-parse", "--verify", "jupiter/sqli")
        with Engine(Workspace(home, f"sqlite:///{home / 'jupiter.db'}"), actor="cli-tester") as e:
            [row] = e.list_pull_requests(state="open")
        assert row["number"] == 1 and row["branch"] == "jupiter/sqli"
    finally:
        fake.stop()


@pytest.mark.parametrize("outcome", ["merged", "closed"])
def test_workflow_deploy_stage_delivers_a_pull_request_and_merge_completes(
    eng: Engine, work: Path, github: FakeForge, outcome: str
) -> None:
    """`deliver: pull_request` on a workflow's deploy stage: the reviewed
    plans become a PR; the remediation waits in deploying until the poll
    sees the merge (completed) or the close (cancelled); CI is its test result."""
    import yaml

    (eng.workspace.home / "workflows").mkdir(parents=True)
    pr = {"forge": "github", "repo": "acme/app", "branch": "jupiter/rem"}
    stages = [
        {"kind": "snapshot"},
        {"kind": "deploy", "deliver": "pull_request", "pull_request": pr},
    ]
    (eng.workspace.home / "workflows" / "code-pr.yaml").write_text(
        yaml.safe_dump({"name": "code-pr", "stages": stages})
    )
    eng.scan(str(work))
    made = eng.remediations.create(str(work), only=["PY-SQLI-001"], workflow="code-pr")
    assert made.remediation is not None
    info = eng.remediations.run(made.remediation.id)
    assert info.status == "deploying", info.to_json()
    [create] = github.calls("POST", "/pulls")
    assert create.body["head"] == "jupiter/rem" and create.body["base"] == "main"
    assert "PY-SQLI-001" in github.pulls[1].body
    # The target's base branch is untouched: merging the request is the deployment.
    assert git(work, "branch", "--show-current").strip() == "main"
    assert "%" in (work / "src" / "main.py").read_text()
    assert remote_sha(work, "jupiter/rem") == git(work, "rev-parse", "jupiter/rem").strip()
    # Resuming does not open a second request.
    assert eng.remediations.resume(made.remediation.id).status == "deploying"
    assert len(github.pulls) == 1
    head = remote_sha(work, "jupiter/rem")
    github.statuses[str(head)] = [("ci/tests", "failure")]
    [polled] = eng.sync_pull_requests()
    assert polled["ci"] == "failure"
    rem_id = int(str(made.remediation.id).removeprefix("REM-"))
    with eng.db.reading() as s:
        rem = s.get(RemediationRow, rem_id)
        assert rem is not None
        assert rem.facts["test_result"]["status"] == "failure"
        assert rem.facts["test_result"]["source"] == "pull_request_ci"
    github.pulls[1].state = outcome
    [polled] = eng.sync_pull_requests()
    if outcome == "merged":
        assert polled["remediation_completed"] == f"REM-{rem_id}"
        assert eng.remediations.show(made.remediation.id).status == "completed"
    else:
        assert polled["state"] == "declined"
        assert polled["remediation_cancelled"] == f"REM-{rem_id}"
        assert eng.remediations.show(made.remediation.id).status == "cancelled"


def test_workflow_deploy_stage_needs_its_pull_request_settings() -> None:
    from pydantic import ValidationError

    from jupiter.workflows.definitions import DeployStage

    with pytest.raises(ValidationError, match="needs a 'pull_request:' mapping"):
        DeployStage(deliver="pull_request")
    with pytest.raises(ValidationError, match="repo"):
        DeployStage.model_validate(
            {"deliver": "pull_request", "pull_request": {"forge": "github", "repo": "nope"}}
        )


def test_body_lists_evidence_decisions_and_undo_and_is_redacted() -> None:
    from jupiter.pull_requests import Item, labels_for, render_body, title_for
    from jupiter.store.tables import FindingRow, RunStepRow

    def finding(i: int, rule: str, severity: str, path: str) -> FindingRow:
        return FindingRow(
            id=i, fingerprint=f"{i:064x}", rule_id=rule, title=f"{rule} title", severity=severity,
            path=path, start_line=7, aliases=["CVE-2024-0001"],
        )  # fmt: skip

    fixed = Item(
        finding(1, "B608", "high", "app/db.py"),
        RunStepRow(
            remediator="sql-injection",
            status="verified",
            commit="a" * 40,
            plan_hash="h1",
            detail="fixed and verified by re-detection",
            validations=[{"validator": "python-compile", "status": "passed", "detail": "ok"}],
            plan={
                "title": "Parameterise the query",
                "diff": "-pw = 'x'\n+password = \"hunter2secretvalue\"\n",
            },
        ),
        ["bandit", "semgrep"],
    )
    manual = Item(
        finding(2, "DOCKER-STAGE-ALIAS", "critical", "Dockerfile"),
        RunStepRow(
            remediator="dockerfile",
            status="needs_manual",
            commit=None,
            plan_hash="h2",
            detail="",
            validations=[],
            plan={"needs_manual": "rename one of the two stages"},
        ),
        ["jupiter"],
    )
    body = render_body([fixed], [manual], 12, "main", "jupiter/x")
    for text in (
        "| 1 | high | `B608` | bandit, semgrep | `app/db.py:7` | aaaaaaaaaaaa |",
        "**Advisories:** CVE-2024-0001",
        "- re-detection: fixed and verified by re-detection",
        "- python-compile: passed — ok",
        "- [ ] **DOCKER-STAGE-ALIAS** in `Dockerfile:7` (#2, critical): rename one of the two",
        "`jupiter rollback 12`",
        "`git revert` the commits listed above on `main`",
    ):
        assert text in body, text
    assert "hunter2secretvalue" not in body
    assert labels_for([fixed, manual]) == ["security", "critical"]
    assert title_for("rule", "B608", [fixed]) == "fix(security): B608 (1 finding)"
    assert title_for("finding", "x", [fixed]) == "fix(security): B608 in app/db.py:7"
