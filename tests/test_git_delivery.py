"""GitDelivery against real repositories made with the real git binary."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from jupiter.errors import ConflictError, InputError, JupiterError, TargetError
from jupiter.git_delivery import (
    SUBJECT_LIMIT,
    BranchStart,
    GitDelivery,
    commit_message,
)

SSHD = b"# sshd\nPermitRootLogin yes\nPasswordAuthentication yes\n"
REQS = b"flask==2.0.0\nrequests==2.19.0\n"
APP = b"import os\n\n\ndef main():\n    return os.getcwd()\n"


def git(repo: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=30,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "LANG": "C",
            "LC_ALL": "C",
        },
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {args} failed: {proc.stderr}")
    return proc.stdout


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the host's ~/.gitconfig (hooksPath, identity, excludes) out of the tests."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small app committed once; each test gets its own copy (git calls are slow)."""
    root = tmp_path_factory.mktemp("template") / "app"
    (root / "etc" / "ssh").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "etc" / "ssh" / "sshd_config").write_bytes(SSHD)
    (root / "requirements.txt").write_bytes(REQS)
    (root / "src" / "main.py").write_bytes(APP)
    (root / ".gitignore").write_text("*.log\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Dev Eloper")
    git(root, "config", "user.email", "dev@example.org")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "app"
    shutil.copytree(template, root, symlinks=True)
    return root


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def branches(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()


def status(repo: Path) -> str:
    return git(repo, "status", "--porcelain", "-uall")


def fix_sshd(repo: Path) -> None:
    path = repo / "etc" / "ssh" / "sshd_config"
    path.write_bytes(path.read_bytes().replace(b"PermitRootLogin yes", b"PermitRootLogin no"))


def fix_reqs(repo: Path) -> None:
    (repo / "requirements.txt").write_bytes(b"flask==2.2.5\nrequests==2.31.0\n")


def deliver_two(repo: Path) -> tuple[GitDelivery, BranchStart, list[str]]:
    gd = GitDelivery(repo)
    start = gd.start("jupiter/run-7")
    fix_sshd(repo)
    first = gd.commit(
        ["etc/ssh/sshd_config"],
        commit_message(
            12,
            "SSHD-ROOT-LOGIN",
            "Root login over SSH is allowed",
            [],
            "sshd-hardening",
            "verified: detector clean, sshd -t passed",
            "a" * 64,
            path="etc/ssh/sshd_config",
        ),
    )
    fix_reqs(repo)
    second = gd.commit(
        ["requirements.txt"],
        commit_message(
            13,
            "GHSA-j8r2-6x86-q33q",
            "requests leaks Proxy-Authorization",
            ["GHSA-j8r2-6x86-q33q", "CVE-2023-32681", "PYSEC-2023-74"],
            "python-dependencies",
            "verified",
            "b" * 64,
            path="requirements.txt",
        ),
    )
    return gd, start, [first, second]


# -- opening a repository -----------------------------------------------------


def test_open_refuses_what_is_not_the_top_of_a_work_tree(tmp_path: Path, repo: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(TargetError, match="not a git work tree"):
        GitDelivery(plain)
    with pytest.raises(TargetError, match="inside the git work tree"):
        GitDelivery(repo / "src")
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    with pytest.raises(TargetError, match="not a git work tree"):
        GitDelivery(bare)
    with pytest.raises(TargetError, match="not a directory"):
        GitDelivery(tmp_path / "missing")


def test_open_reports_missing_git(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "nobin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(TargetError, match="git program was not found"):
        GitDelivery(repo)


def test_environment_from_the_caller_does_not_redirect_git(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    # As if Jupiter ran inside another repository's hook.
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    gd = GitDelivery(repo)
    gd.start("jupiter/env")
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_WORK_TREE")
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "jupiter/env"


# -- start ----------------------------------------------------------------------


def test_start_creates_and_checks_out_branch(repo: Path) -> None:
    base = head(repo)
    start = GitDelivery(repo).start("jupiter/run-1")
    assert start == BranchStart(branch="jupiter/run-1", base=base, previous_branch="main")
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "jupiter/run-1"
    assert sorted(branches(repo)) == ["jupiter/run-1", "main"]
    assert head(repo) == base
    assert status(repo) == ""


def _dirty_tracked(repo: Path) -> None:
    (repo / "src" / "main.py").write_bytes(APP + b"# edit\n")


def _dirty_staged(repo: Path) -> None:
    (repo / "requirements.txt").write_bytes(REQS + b"six==1.0\n")
    git(repo, "add", "requirements.txt")


def _untracked(repo: Path) -> None:
    (repo / "src" / "new module.py").write_text("x = 1\n")


def _existing_branch(repo: Path) -> None:
    git(repo, "branch", "jupiter/run-1")


@pytest.mark.parametrize(
    ("spoil", "branch", "message"),
    [
        (_dirty_tracked, "jupiter/run-1", "uncommitted changes.*'src/main.py'"),
        (_dirty_staged, "jupiter/run-1", "'requirements.txt'"),
        (_untracked, "jupiter/run-1", "untracked files.*'src/new module.py'"),
        (_existing_branch, "jupiter/run-1", "already exists"),
        (None, "bad name", "not a valid git branch name"),
        (None, "-D", "not a valid git branch name"),
        (None, "a..b", "not a valid git branch name"),
        (None, "@{-1}", "not a valid git branch name"),
        (None, "HEAD", "not a valid git branch name"),
        (None, "ends.lock", "not a valid git branch name"),
    ],
)
def test_start_refuses_and_changes_nothing(
    repo: Path, spoil: object, branch: str, message: str
) -> None:
    git(repo, "switch", "-q", "-c", "feature")
    git(repo, "switch", "-q", "main")  # so "@{-1}" would expand to "feature"
    if callable(spoil):
        spoil(repo)
    before = (head(repo), sorted(branches(repo)), status(repo))
    with pytest.raises(InputError, match=message):
        GitDelivery(repo).start(branch)
    assert (head(repo), sorted(branches(repo)), status(repo)) == before
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "main"


def test_start_lists_at_most_five_dirty_paths(repo: Path) -> None:
    for i in range(8):
        (repo / f"junk{i}.txt").write_text("x")
    with pytest.raises(InputError, match="and 3 more") as info:
        GitDelivery(repo).start("jupiter/x")
    assert "\n" not in str(info.value)


def test_ignored_files_do_not_count_as_dirty(repo: Path) -> None:
    (repo / "debug.log").write_text("noise")
    GitDelivery(repo).start("jupiter/ignored-ok")
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "jupiter/ignored-ok"


def test_start_refuses_during_a_merge(repo: Path) -> None:
    git(repo, "switch", "-q", "-c", "other")
    (repo / "requirements.txt").write_text("flask==1\n")
    git(repo, "commit", "-qam", "other")
    git(repo, "switch", "-q", "main")
    (repo / "requirements.txt").write_text("flask==3\n")
    git(repo, "commit", "-qam", "main")
    git(repo, "merge", "other", check=False)  # conflicts, leaves MERGE_HEAD
    with pytest.raises(InputError, match="a merge is in progress"):
        GitDelivery(repo).start("jupiter/merge")
    assert "jupiter/merge" not in branches(repo)


def test_start_refuses_an_unborn_repository(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    git(root, "init", "-q")
    with pytest.raises(InputError, match="no commits yet"):
        GitDelivery(root).start("jupiter/x")


def test_start_from_detached_head_and_finish_returns(repo: Path) -> None:
    base = head(repo)
    git(repo, "switch", "-q", "--detach", base)
    gd = GitDelivery(repo)
    start = gd.start("jupiter/detached")
    assert start.previous_branch is None and start.base == base
    fix_sshd(repo)
    gd.commit(["etc/ssh/sshd_config"], "fix sshd\n")
    gd.finish(start, return_to_previous=True)
    assert git(repo, "symbolic-ref", "-q", "HEAD", check=False) == ""
    assert head(repo) == base
    assert (repo / "etc" / "ssh" / "sshd_config").read_bytes() == SSHD


def test_finish_switches_back_to_previous_branch(repo: Path) -> None:
    gd, start, shas = deliver_two(repo)
    gd.finish(start, return_to_previous=False)
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "jupiter/run-7"
    gd.finish(start, return_to_previous=True)
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "main"
    assert (repo / "requirements.txt").read_bytes() == REQS
    assert git(repo, "rev-parse", "jupiter/run-7").strip() == shas[-1]


# -- commit ---------------------------------------------------------------------


def test_one_commit_per_finding_on_the_branch_only(repo: Path) -> None:
    base = head(repo)
    gd, start, shas = deliver_two(repo)
    assert gd.commits_since(start.base) == shas
    assert git(repo, "rev-list", "--reverse", "main..jupiter/run-7").split() == shas
    assert head(repo) == shas[1] == gd.head()
    assert git(repo, "rev-parse", "main").strip() == base
    for sha in shas:
        assert git(repo, "branch", "--format=%(refname:short)", "--contains", sha).split() == [
            "jupiter/run-7"
        ]
    # Each commit holds exactly its finding's file.
    assert git(repo, "show", "--format=", "--name-only", shas[0]).split() == ["etc/ssh/sshd_config"]
    assert git(repo, "show", "--format=", "--name-only", shas[1]).split() == ["requirements.txt"]

    first = git(repo, "log", "-1", "--format=%B", shas[0])
    assert first.splitlines()[0] == "fix(jupiter): SSHD-ROOT-LOGIN in etc/ssh/sshd_config"
    assert "Finding: 12" in first and "Remediator: sshd-hardening" in first
    assert "Verification: verified: detector clean, sshd -t passed" in first
    second = git(repo, "log", "-1", "--format=%B", shas[1])
    assert "Advisories: CVE-2023-32681, GHSA-j8r2-6x86-q33q, PYSEC-2023-74" in second
    trailers = (
        git(repo, "log", "-1", "--format=%(trailers:only,unfold)", shas[1]).strip().splitlines()
    )
    assert trailers == [
        "Jupiter-Finding: 13",
        "Jupiter-Rule: GHSA-j8r2-6x86-q33q",
        "Jupiter-Advisory: CVE-2023-32681",
        "Jupiter-Advisory: GHSA-j8r2-6x86-q33q",
        "Jupiter-Advisory: PYSEC-2023-74",
        f"Jupiter-Plan: {'b' * 64}",
    ]
    finding = git(repo, "log", "--format=%(trailers:key=Jupiter-Finding,valueonly)", "main..")
    assert finding.split() == ["13", "12"]
    # Author is Jupiter; the committer is the identity the repository configures.
    people = git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>", shas[0]).strip()
    assert people == "Jupiter <jupiter@localhost>|Dev Eloper <dev@example.org>"
    assert status(repo) == ""


def test_committer_falls_back_to_jupiter_without_configured_identity(repo: Path) -> None:
    git(repo, "config", "--unset", "user.name")
    git(repo, "config", "--unset", "user.email")
    gd = GitDelivery(repo, identity=("Jupiter Bot", "bot@example.org"))
    gd.start("jupiter/id")
    fix_sshd(repo)
    sha = gd.commit(["etc/ssh/sshd_config"], "fix\n")
    people = git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>", sha).strip()
    assert people == "Jupiter Bot <bot@example.org>|Jupiter Bot <bot@example.org>"


def test_commit_stages_only_the_given_paths_and_handles_deletion(repo: Path) -> None:
    gd = GitDelivery(repo)
    gd.start("jupiter/del")
    (repo / "src" / "main.py").unlink()
    (repo / "requirements.txt").write_bytes(b"other change\n")
    sha = gd.commit(["./src//main.py"], "remove main\n")
    assert git(repo, "show", "--format=", "--name-status", sha).split() == ["D", "src/main.py"]
    assert status(repo) == " M requirements.txt\n"
    git(repo, "checkout", "-q", "--", "requirements.txt")
    gd.revert([sha])
    assert (repo / "src" / "main.py").read_bytes() == APP


@pytest.mark.parametrize(
    ("paths", "error", "message"),
    [
        ([], InputError, "no paths to commit"),
        (["src/main.py"], InputError, "do not differ from HEAD"),
        (["nope.txt"], InputError, "git add failed.*nope.txt"),
        (["debug.log"], InputError, "git add failed.*ignored"),
        (["../outside"], TargetError, "contains '..'"),
        (["/etc/passwd"], TargetError, "absolute"),
        ([".git/config"], InputError, "inside .git"),
        (["src"], InputError, "name each changed file, not a directory"),
    ],
)
def test_commit_refusals_leave_index_and_head_alone(
    repo: Path, paths: list[str], error: type[JupiterError], message: str
) -> None:
    gd = GitDelivery(repo)
    gd.start("jupiter/refuse")
    (repo / "debug.log").write_text("x")
    (repo / "src" / "extra.py").write_text("y = 2\n")  # only ["src"] may pick it up
    before = head(repo)
    with pytest.raises(error, match=message):
        gd.commit(paths, "msg\n")
    assert head(repo) == before
    assert git(repo, "diff", "--cached", "--name-only") == ""


def test_commit_refuses_off_the_delivery_branch(repo: Path) -> None:
    fix_sshd(repo)
    with pytest.raises(InputError, match="none started"):
        GitDelivery(repo).commit(["etc/ssh/sshd_config"], "x\n")
    git(repo, "checkout", "-q", "--", ".")
    gd = GitDelivery(repo)
    gd.start("jupiter/a")
    git(repo, "switch", "-q", "main")
    fix_sshd(repo)
    with pytest.raises(InputError, match="on main, not on the delivery branch jupiter/a"):
        gd.commit(["etc/ssh/sshd_config"], "x\n")
    assert git(repo, "rev-list", "--count", "main").strip() == "1"
    # After a restart, a fresh instance adopts the branch explicitly.
    git(repo, "switch", "-q", "jupiter/a")
    fresh = GitDelivery(repo)
    assert fresh.resume("jupiter/a") == "jupiter/a"
    sha = fresh.commit(["etc/ssh/sshd_config"], "x\n")
    assert git(repo, "rev-parse", "jupiter/a").strip() == sha


def test_commit_refuses_when_other_changes_are_already_staged(repo: Path) -> None:
    gd = GitDelivery(repo)
    gd.start("jupiter/staged")
    (repo / "src" / "main.py").write_bytes(b"# someone else\n")
    git(repo, "add", "src/main.py")
    fix_sshd(repo)
    with pytest.raises(InputError, match=r"already has staged changes.*src/main\.py"):
        gd.commit(["etc/ssh/sshd_config"], "x\n")
    assert git(repo, "diff", "--cached", "--name-only").split() == ["src/main.py"]


def test_paths_with_spaces_dashes_and_glob_characters(repo: Path) -> None:
    names = [
        "-rf",
        "--all",
        "my file.txt",
        "*.py",
        "dir with space/-x y.cfg",
        ":(glob)z",
        "ünï€.txt",
    ]
    for name in names:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text("v1\n")
    git(repo, "--literal-pathspecs", "add", "--", *names)
    git(repo, "commit", "-qm", "odd names")
    gd = GitDelivery(repo)
    gd.start("jupiter/odd")
    for name in names:
        (repo / name).write_text("v2\n")
    (repo / "src" / "main.py").write_text("# must stay out of the commit\n")
    sha = gd.commit(names, "odd names fixed\n")
    committed = git(repo, "show", "--format=", "--name-only", "-z", sha).strip("\0").split("\0")
    assert sorted(committed) == sorted(names)
    # "*.py" was taken literally: src/main.py is still only modified in the tree.
    assert status(repo) == " M src/main.py\n"
    (repo / "src" / "main.py").write_bytes(APP)
    reverts = gd.revert([sha])
    assert len(reverts) == 1
    assert all((repo / name).read_text() == "v1\n" for name in names)


# -- no repository code runs ----------------------------------------------------------

HOOK_NAMES = (
    "pre-commit", "commit-msg", "prepare-commit-msg", "post-commit", "post-checkout",
    "post-rewrite", "reference-transaction", "post-index-change",
)  # fmt: skip
HOOK = """#!/bin/sh
echo "$0" >> {marker}
exit 1
"""


def test_repository_hooks_filters_and_fsmonitor_are_not_executed(
    repo: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran.txt"
    script = HOOK.format(marker=marker)
    other_hooks = tmp_path / "hooks-elsewhere"
    other_hooks.mkdir()
    for hooks in (repo / ".git" / "hooks", other_hooks):
        for name in HOOK_NAMES:
            (hooks / name).write_text(script)
            (hooks / name).chmod(0o755)
    tool = tmp_path / "tool.sh"
    tool.write_text(script)
    tool.chmod(0o755)
    git(repo, "config", "core.hooksPath", str(other_hooks))
    git(repo, "config", "core.fsmonitor", str(tool))
    git(repo, "config", "filter.evil.clean", str(tool))
    git(repo, "config", "filter.evil.smudge", str(tool))
    git(repo, "config", "merge.evil.driver", f"{tool} %O %A %B")
    git(repo, "config", "commit.gpgSign", "true")
    git(repo, "config", "gpg.program", str(tool))
    (repo / ".git" / "info" / "attributes").write_text("*.py filter=evil\n* merge=evil\n")

    gd, start, shas = deliver_two(repo)
    assert gd.revert(shas)
    gd.finish(start, return_to_previous=True)
    assert not marker.exists(), marker.read_text()

    # A file under a configured filter is refused, not committed raw.
    gd.start("jupiter/filtered")
    (repo / "src" / "main.py").write_bytes(APP + b"# fixed\n")
    with pytest.raises(InputError, match="uses the git filter 'evil'"):
        gd.commit(["src/main.py"], "x\n")
    assert not marker.exists()
    assert git(repo, "diff", "--cached", "--name-only") == ""


# -- revert ---------------------------------------------------------------------


def test_revert_restores_base_bytes_with_one_revert_per_commit(repo: Path) -> None:
    originals = {p: (repo / p).read_bytes() for p in ("etc/ssh/sshd_config", "requirements.txt")}
    gd, _, shas = deliver_two(repo)
    reverts = gd.revert(shas, message="revert(jupiter): roll back run 7")
    assert len(reverts) == 2
    assert gd.commits_since(shas[-1]) == reverts
    for path, data in originals.items():
        assert (repo / path).read_bytes() == data
    # Newest first: the first revert undoes the second fix.
    bodies = [git(repo, "log", "-1", "--format=%B", sha) for sha in reverts]
    assert f"This reverts commit {shas[1]}." in bodies[0]
    assert f"This reverts commit {shas[0]}." in bodies[1]
    assert all(b.startswith("revert(jupiter): roll back run 7\n") for b in bodies)
    assert git(repo, "diff", "main", "HEAD") == ""
    assert status(repo) == ""


def test_revert_default_message_and_retry_is_idempotent(repo: Path) -> None:
    gd, _, shas = deliver_two(repo)
    first = gd.revert(shas)
    subject = git(repo, "log", "-1", "--format=%s", first[-1]).strip()
    assert subject == 'Revert "fix(jupiter): SSHD-ROOT-LOGIN in etc/ssh/sshd_config"'
    # A rollback retried after a crash finds the changes already undone.
    assert gd.revert(shas) == []
    assert head(repo) == first[-1]
    assert status(repo) == ""
    assert not (repo / ".git" / "REVERT_HEAD").exists()
    gd.start("jupiter/after-retry")  # nothing is left "in progress"


def test_revert_conflict_aborts_and_leaves_repository_clean(repo: Path) -> None:
    gd, _, shas = deliver_two(repo)
    # A person edits the line the first fix changed.
    path = repo / "etc" / "ssh" / "sshd_config"
    path.write_bytes(
        path.read_bytes().replace(b"PermitRootLogin no", b"PermitRootLogin prohibit-password")
    )
    git(repo, "commit", "-qam", "manual tweak")
    before = head(repo)
    manual = path.read_bytes()
    with pytest.raises(ConflictError, match=rf"{shas[0][:12]}.*'etc/ssh/sshd_config'") as info:
        gd.revert(shas)
    assert "\n" not in str(info.value)
    # All or nothing: the second fix's revert (which applied cleanly) was undone too.
    assert head(repo) == before
    assert path.read_bytes() == manual
    assert (repo / "requirements.txt").read_bytes() == b"flask==2.2.5\nrequests==2.31.0\n"
    assert status(repo) == ""
    git_dir = repo / ".git"
    assert not (git_dir / "REVERT_HEAD").exists() and not (git_dir / "sequencer").exists()


def test_rollback_later_from_another_branch(repo: Path) -> None:
    gd, start, shas = deliver_two(repo)
    gd.finish(start, return_to_previous=True)
    later = GitDelivery(repo)  # e.g. `jupiter rollback` in a new process
    with pytest.raises(InputError, match="not on the delivery branch"):
        later.resume("jupiter/run-7")
    with pytest.raises(InputError, match="does not exist"):
        later.resume("jupiter/nope", checkout=True)
    previous = later.resume("jupiter/run-7", checkout=True)
    assert previous == "main"
    later.revert(shas)
    later.finish(BranchStart("jupiter/run-7", start.base, previous), return_to_previous=True)
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "main"
    assert git(repo, "diff", "main", "jupiter/run-7") == ""
    assert git(repo, "rev-list", "--count", "main..jupiter/run-7").strip() == "4"


def test_revert_refusals(repo: Path) -> None:
    gd, _, shas = deliver_two(repo)
    (repo / "src" / "main.py").write_bytes(b"dirty\n")
    with pytest.raises(InputError, match="uncommitted changes"):
        gd.revert(shas)
    git(repo, "checkout", "-q", "--", "src/main.py")
    with pytest.raises(InputError, match="not a commit"):
        gd.revert(["0" * 40])
    with pytest.raises(InputError, match="not a commit"):
        gd.revert(["--hard"])
    git(repo, "switch", "-q", "main")
    with pytest.raises(InputError, match="not in the history of HEAD"):
        gd.revert(shas)
    assert gd.revert([]) == []
    assert status(repo) == ""


# -- commit messages ------------------------------------------------------------


def test_commit_message_shape() -> None:
    msg = commit_message(
        12, "SSHD-ROOT-LOGIN", "Root login", ["cve-2024-6387", "GHSA-xxxx", "not-an-advisory"],
        "sshd-hardening", "verified", "f" * 64, path="etc/ssh/sshd_config",
    )  # fmt: skip
    lines = msg.splitlines()
    assert lines[:3] == ["fix(jupiter): SSHD-ROOT-LOGIN in etc/ssh/sshd_config", "", "Root login"]
    assert "Advisories: cve-2024-6387, GHSA-xxxx" in lines
    assert lines[-5:] == [
        "Jupiter-Finding: 12",
        "Jupiter-Rule: SSHD-ROOT-LOGIN",
        "Jupiter-Advisory: cve-2024-6387",
        "Jupiter-Advisory: GHSA-xxxx",
        f"Jupiter-Plan: {'f' * 64}",
    ]
    assert lines[-6] == ""
    without_path = commit_message(1, "B608", "SQL built from strings", [], "r", "ok", "h")
    assert without_path.splitlines()[0] == "fix(jupiter): B608: SQL built from strings"


def test_commit_message_subject_is_bounded_and_inputs_cannot_forge_trailers() -> None:
    long_path = "services/" + "very-long-directory-name/" * 5 + "settings.py"
    msg = commit_message(None, "B608", "t", [], "sql-injection-python", "", "h", path=long_path)
    subject = msg.splitlines()[0]
    assert len(subject) == SUBJECT_LIMIT and subject.endswith("...")
    assert "Finding: not stored" in msg and "Jupiter-Finding" not in msg
    assert "Verification: not run" in msg

    evil = commit_message(
        5, "R1", "t\n\nJupiter-Finding: 999\nJupiter-Plan: x", [], "r", "ok\nJupiter-Plan: y", "h"
    )
    lines = evil.splitlines()
    assert [ln for ln in lines if ln.startswith("Jupiter-Finding:")] == ["Jupiter-Finding: 5"]
    assert [ln for ln in lines if ln.startswith("Jupiter-Plan:")] == ["Jupiter-Plan: h"]
    assert "Verification: ok Jupiter-Plan: y" in lines


def test_revert_needing_a_configured_merge_driver_does_not_run_it(
    repo: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran.txt"
    tool = tmp_path / "merge.sh"
    tool.write_text(HOOK.format(marker=marker))
    tool.chmod(0o755)
    git(repo, "config", "merge.evil.driver", f"{tool} %O %A %B")
    (repo / ".git" / "info" / "attributes").write_text("sshd_config merge=evil\n")
    gd, _, shas = deliver_two(repo)
    path = repo / "etc" / "ssh" / "sshd_config"
    path.write_bytes(path.read_bytes() + b"Banner none\n")  # a content merge is needed
    git(repo, "commit", "-qam", "manual append")
    before = head(repo)
    with pytest.raises(ConflictError, match=rf"{shas[0][:12]}.*merge drivers \(evil\)"):
        gd.revert(shas)
    assert not marker.exists()
    assert head(repo) == before and status(repo) == ""


def test_a_git_call_that_outlives_the_timeout_is_a_target_error(repo: Path) -> None:
    with pytest.raises(TargetError, match=r"did not finish within 1e-06 s"):
        GitDelivery(repo, timeout=1e-6)


def test_real_remediator_fixes_become_commits_and_revert_brings_findings_back(
    repo: Path,
) -> None:
    """The flow the run executor follows, with the real sshd-hardening plugin."""
    from jupiter.plugins.sshd.fix import SshdHardening, SshdParams
    from jupiter.runs import apply_plan
    from jupiter.targets.local import LocalTarget

    plugin, params, target = SshdHardening(), SshdParams(), LocalTarget(repo)
    findings = [
        f
        for f in plugin.detect(target, params)
        if f.location.path == "etc/ssh/sshd_config" and f.rule_id.startswith("SSHD-")
    ][:2]
    assert len(findings) == 2
    gd = GitDelivery(repo)
    start = gd.start("jupiter/sshd")
    shas = []
    for number, finding in enumerate(findings, start=1):
        plan = plugin.plan(finding, target, params)
        assert plan.changes and not plan.needs_manual
        apply_plan(target, plan)
        still = {f.rule_id for f in plugin.detect(target, params)}
        verdict = "still present" if finding.rule_id in still else "verified: detector clean"
        message = commit_message(
            number, finding.rule_id, finding.title, finding.aliases, plugin.name, verdict,
            plan.plan_hash(), path=finding.location.path,
        )  # fmt: skip
        shas.append(gd.commit(plan.touched_paths(), message))
        assert status(repo) == ""  # the target left nothing else behind
    assert gd.commits_since(start.base) == shas
    for sha, finding in zip(shas, findings, strict=True):
        body = git(repo, "log", "-1", "--format=%B", sha)
        assert body.startswith(f"fix(jupiter): {finding.rule_id} in etc/ssh/sshd_config\n")
        assert "Verification: verified: detector clean" in body
    assert not {f.rule_id for f in findings} & {f.rule_id for f in plugin.detect(target, params)}

    gd.revert(shas)
    assert (repo / "etc" / "ssh" / "sshd_config").read_bytes() == SSHD
    assert {f.rule_id for f in findings} <= {f.rule_id for f in plugin.detect(target, params)}
