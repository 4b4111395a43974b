"""Delivering fixes to a git working tree as a branch with one commit per finding.

Flow for a run: ``start(branch)`` creates and checks out a new branch from
HEAD on a clean work tree; after each finding's fix is applied and verified,
``commit(paths, commit_message(...))`` records exactly the files it touched;
rollback is ``revert(shas)``, which adds revert commits (history is never
rewritten); ``finish`` optionally switches back to the branch the user was on.
A later process (a resumed run, ``jupiter rollback``) adopts the branch with
``resume(branch, checkout=True)``.

Decisions a caller should know:

* **The real ``git`` binary**, run with argument vectors and a timeout; any
  failure becomes a :mod:`jupiter.errors` exception carrying the first line of
  git's stderr.
* **Environment.** git sees only ``PATH``, ``HOME`` and ``XDG_CONFIG_HOME``
  (so the user's own config applies: identity, global excludes, and
  ``safe.directory``; the system config is read too, as images often set
  ``safe.directory`` there), plus ``LANG=LC_ALL=C`` (parseable messages),
  ``GIT_TERMINAL_PROMPT=0``, ``GIT_EDITOR=:`` (never an editor),
  ``GIT_PAGER=cat`` and ``GIT_LITERAL_PATHSPECS=1`` (a file named ``*.py`` or
  ``:(glob)x`` means that file only). Jupiter's own ``GIT_DIR``,
  ``GIT_INDEX_FILE`` and the like are dropped: inherited from, say, a hook
  they would point git at another repository.
* **No repository code runs on the Jupiter host.** Hooks, an fsmonitor
  daemon, filter drivers (clean/smudge/process), merge drivers and the GPG
  program are all commands taken from config that the repository (or whoever
  wrote its ``.git/config``) controls. Every git call carries ``-c`` overrides,
  which win over every config file: ``core.hooksPath=/dev/null``,
  ``core.fsmonitor=false``, ``commit.gpgSign=false``, empty commands for each
  configured filter and merge driver, and ``gc.auto=0`` (no background gc left
  running after we return). ``commit`` refuses a path whose attributes name a
  configured filter (e.g. git-lfs): committing it without its filter would
  store the wrong bytes. Consequence: Jupiter's commits are unsigned and the
  repository's pre-commit checks do not run; they run in CI on the branch.
* **Identity.** The author is Jupiter (``Jupiter <jupiter@localhost>`` unless
  ``identity`` says otherwise): the change was written by the tool, and
  ``git log --author`` finds every such commit. The committer is the identity
  configured for the repository (``user.name`` and ``user.email`` from any
  config scope) when both are set, else the author too.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from jupiter.errors import ConflictError, InputError, JupiterError, TargetError
from jupiter.git_messages import SUBJECT_LIMIT, commit_message
from jupiter.redact import redact_text
from jupiter.targets.base import normalise_relpath

DEFAULT_IDENTITY = ("Jupiter", "jupiter@localhost")
_LISTED = 5  # how many offending paths an error message names

# Always applied; "-c" on the command line beats every config file.
_SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "commit.gpgSign=false",
    "gc.auto=0",
    "maintenance.auto=false",
)
# Message from stdin, kept as given (no '#' stripping: a title may hold one);
# --no-verify as well as the hooksPath override, in case either is bypassed.
_COMMIT = ("commit", "-q", "--no-verify", "--no-gpg-sign", "--cleanup=whitespace", "-F", "-")
# Files git keeps while an operation waits for the user.
_IN_PROGRESS = {
    "MERGE_HEAD": "a merge",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase or git am",
    "BISECT_LOG": "a bisect",
}
_DRIVER_KEY = re.compile(r"^(filter|merge)\.(.+)\.(clean|smudge|process|driver)$")


@dataclass(frozen=True)
class BranchStart:
    """Where a delivery branch began: its name, the base commit it was
    created from, and the branch checked out before (None if HEAD was
    detached), to return to in :meth:`GitDelivery.finish`."""

    branch: str
    base: str
    previous_branch: str | None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "no message from git"


def _listing(paths: list[str]) -> str:
    shown = ", ".join(repr(p) for p in paths[:_LISTED])
    more = len(paths) - _LISTED
    return f"{shown} and {more} more" if more > 0 else shown


class GitDelivery:
    """Branch, commit and revert in the git work tree whose top is ``root``.

    Raises :class:`TargetError` when git is missing or ``root`` is not the top
    of a git work tree (a subdirectory, a bare repository, no repository).
    """

    def __init__(
        self,
        root: Path,
        timeout: float = 30.0,
        *,
        identity: tuple[str, str] = DEFAULT_IDENTITY,
    ) -> None:
        self.root = Path(root).resolve()
        self.timeout = timeout
        self.identity = identity
        self.branch: str | None = None  # set by start(); commit() stays on it
        self._env = self._scrubbed_env()
        self._driver_overrides: tuple[str, ...] = ()
        self._filters: frozenset[str] = frozenset()
        self._merge_drivers: frozenset[str] = frozenset()
        if not self.root.is_dir():
            raise TargetError(f"{self.root} is not a directory; give the top of a git work tree")
        proc = self._git("rev-parse", "--show-toplevel", check=False)
        if proc.returncode != 0:
            raise TargetError(
                f"{self.root} is not a git work tree ({_first_line(proc.stderr)}); "
                "run git init there or deliver without --git-branch"
            )
        top = proc.stdout.strip()
        if Path(top).resolve() != self.root:
            raise TargetError(
                f"{self.root} is inside the git work tree {top}, not its top; "
                "point the target at the repository's top directory"
            )
        self._load_drivers()

    # -- plumbing ----------------------------------------------------------

    @staticmethod
    def _scrubbed_env() -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C",
            "LC_ALL": "C",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_EDITOR": ":",
            "GIT_PAGER": "cat",
            "GIT_LITERAL_PATHSPECS": "1",
        }
        for name in ("HOME", "XDG_CONFIG_HOME"):
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    def _git(
        self,
        *args: str,
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
        error: type[JupiterError] = TargetError,
    ) -> subprocess.CompletedProcess[str]:
        argv = ["git"]
        for item in (*_SAFE_CONFIG, *self._driver_overrides):
            argv += ["-c", item]
        argv += args
        try:
            proc = subprocess.run(
                argv,
                cwd=self.root,
                env={**self._env, **(env or {})},
                input=stdin,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="surrogateescape",
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise TargetError("the git program was not found on PATH; install git") from exc
        except subprocess.TimeoutExpired as exc:
            raise TargetError(
                f"git {args[0]} in {self.root} did not finish within {self.timeout:g} s; "
                "check for a lock file or a slow file system and retry"
            ) from exc
        if check and proc.returncode != 0:
            raise error(
                f"git {args[0]} failed in {self.root}: {_first_line(proc.stderr or proc.stdout)}"
            )
        return proc

    def _load_drivers(self) -> None:
        """Neutralise every configured filter and merge driver (see module doc)."""
        proc = self._git("config", "-z", "--get-regexp", r"^(filter|merge)\.", check=False)
        overrides: list[str] = []
        filters: set[str] = set()
        merges: set[str] = set()
        for entry in proc.stdout.split("\0"):
            key = entry.split("\n", 1)[0]
            match = _DRIVER_KEY.match(key)
            if match is None:
                continue
            kind, name, _ = match.groups()
            if kind == "filter":
                filters.add(name)
                overrides += [f"filter.{name}.{k}=" for k in ("clean", "smudge", "process")]
            else:
                merges.add(name)
                overrides.append(f"merge.{name}.driver=")
        self._driver_overrides = tuple(dict.fromkeys(overrides))
        self._filters = frozenset(filters)
        self._merge_drivers = frozenset(merges)

    def _commit_env(self) -> dict[str, str]:
        name, email = self.identity
        committer = (name, email)
        out = self._git("config", "-z", "--get-regexp", r"^user\.(name|email)$", check=False)
        conf = dict(entry.partition("\n")[::2] for entry in out.stdout.split("\0") if entry)
        if conf.get("user.name", "").strip() and conf.get("user.email", "").strip():
            committer = (conf["user.name"].strip(), conf["user.email"].strip())
        return {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": committer[0],
            "GIT_COMMITTER_EMAIL": committer[1],
        }

    # -- state checks ------------------------------------------------------

    def head(self) -> str:
        """The full sha of the commit HEAD points at."""
        proc = self._git("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
        if proc.returncode != 0:
            raise InputError(
                f"the repository at {self.root} has no commits yet; make an initial commit first"
            )
        return proc.stdout.strip()

    def current_branch(self) -> str | None:
        """The checked-out branch's short name, or None when HEAD is detached."""
        proc = self._git("symbolic-ref", "-q", "--short", "HEAD", check=False)
        if proc.returncode != 0:
            return None
        return proc.stdout.strip() or None

    def dirty_paths(self) -> list[str]:
        """Tracked changes (staged or not) and untracked files that are not ignored."""
        out = self._git(
            "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"
        ).stdout
        return [entry[3:] for entry in out.split("\0") if len(entry) > 3]

    def _refuse_unsettled(self, action: str) -> None:
        args = [arg for name in _IN_PROGRESS for arg in ("--git-path", name)]
        rels = self._git("rev-parse", *args).stdout.splitlines()
        for rel, what in zip(rels, _IN_PROGRESS.values(), strict=True):
            if (self.root / rel).exists():
                raise InputError(
                    f"cannot {action} in {self.root}: {what} is in progress; "
                    "finish or abort it first"
                )
        dirty = self.dirty_paths()
        if dirty:
            raise InputError(
                f"cannot {action}: the work tree at {self.root} has uncommitted changes or "
                f"untracked files ({_listing(dirty)}); commit, stash or remove them first"
            )

    # -- delivery ------------------------------------------------------------

    def start(self, branch: str) -> BranchStart:
        """Create ``branch`` at HEAD and check it out.

        Refuses (InputError, nothing changed) an invalid or existing branch
        name, a dirty work tree, an unborn HEAD, or a merge/rebase/cherry-pick/
        revert/bisect in progress. A detached HEAD is allowed: the branch
        starts at that commit and ``previous_branch`` is None.
        """
        proc = self._git("check-ref-format", "--branch", branch, check=False)
        # "--branch" also expands "@{-1}"-style names; accept only literal ones.
        if branch.startswith("-") or proc.returncode != 0 or proc.stdout.strip() != branch:
            raise InputError(
                f"{branch!r} is not a valid git branch name; use letters, digits, '-', '_', "
                "'.' and '/' (see git check-ref-format)"
            )
        exists = self._git("show-ref", "--verify", "-q", f"refs/heads/{branch}", check=False)
        if exists.returncode == 0:
            raise InputError(
                f"branch {branch!r} already exists in {self.root}; choose another name "
                "or delete the old branch"
            )
        base = self.head()
        previous = self.current_branch()
        self._refuse_unsettled(f"create branch {branch!r}")
        self._git("switch", "-q", "--no-track", "-c", branch, base)
        self.branch = branch
        return BranchStart(branch=branch, base=base, previous_branch=previous)

    def commit(self, paths: list[str], message: str) -> str:
        """Stage exactly ``paths`` (target-relative; deletions included) and
        commit them on the delivery branch; returns the new commit's sha.

        Refuses when HEAD is not on a branch (or not on the branch ``start``
        made), when the index already holds other staged changes, when a path
        is ignored, unknown, uses a filter driver, or when nothing changed.
        """
        if not paths:
            raise InputError("no paths to commit; a fix must name the files it changed")
        rels = list(dict.fromkeys(normalise_relpath(p) for p in paths))
        for rel in rels:
            if rel.split("/", 1)[0] == ".git":
                raise InputError(
                    f"path {rel!r} is inside .git; Jupiter never commits git's own files"
                )
        self._check_on_branch()
        staged = self._staged()
        if staged:
            raise InputError(
                f"the index in {self.root} already has staged changes ({_listing(staged)}); "
                "commit or unstage them before Jupiter commits"
            )
        self._refuse_filtered(rels)
        self._git("add", "--all", "--", *rels, error=InputError)
        staged = self._staged()
        extra = [p for p in staged if p not in rels]
        if extra:
            # A directory path stages everything under it; a fix names files.
            self._git("reset", "-q", "--", *rels, check=False)
            raise InputError(
                f"staging {_listing(rels)} also picked up {_listing(extra)}; "
                "name each changed file, not a directory"
            )
        if not staged:
            raise InputError(
                f"nothing to commit: {_listing(rels)} do not differ from HEAD; "
                "the fix changed no tracked content"
            )
        proc = self._git(*_COMMIT, stdin=message, env=self._commit_env(), check=False)
        if proc.returncode != 0:
            # Leave the index as we found it, so the tree is not half-staged.
            self._git("reset", "-q", "--", *rels, check=False)
            raise TargetError(
                f"git commit failed in {self.root}: {_first_line(proc.stderr or proc.stdout)}"
            )
        return self.head()

    def resume(self, branch: str, *, checkout: bool = False) -> str | None:
        """Adopt an existing ``branch`` as the delivery branch (after a
        restart, or to roll a run back); returns the branch that was checked
        out before (None if HEAD was detached).

        Without ``checkout`` HEAD must already be on ``branch``; with it, the
        branch is checked out first (refusing a dirty or unsettled tree).
        """
        previous = self.current_branch()
        if checkout and previous != branch:
            ref = self._git("show-ref", "--verify", "-q", f"refs/heads/{branch}", check=False)
            if branch.startswith("-") or ref.returncode != 0:
                raise InputError(f"branch {branch!r} does not exist in {self.root}")
            self._refuse_unsettled(f"check out branch {branch!r}")
            self._git("switch", "-q", "--no-guess", branch)
        self.branch = branch
        self._check_on_branch()
        return previous

    def _check_on_branch(self) -> None:
        # Committing a fix onto whatever happens to be checked out (main,
        # say) is the mistake this guards against.
        current = self.current_branch()
        if self.branch is None or current != self.branch:
            raise InputError(
                f"HEAD in {self.root} is on {current or 'no branch (detached)'}, not on the "
                f"delivery branch {self.branch or '(none started: call start or resume)'}; "
                "refusing to commit there; check out that branch or call resume"
            )

    def _staged(self) -> list[str]:
        out = self._git(
            "diff", "--cached", "--name-only", "-z", "--no-renames", "--no-ext-diff"
        ).stdout
        return [p for p in out.split("\0") if p]

    def _refuse_filtered(self, rels: list[str]) -> None:
        if not self._filters:
            return
        fields = self._git("check-attr", "-z", "filter", "--", *rels).stdout.split("\0")
        for i in range(0, len(fields) - 2, 3):
            path, value = fields[i], fields[i + 2]
            if value in self._filters:
                raise InputError(
                    f"path {path!r} uses the git filter {value!r}, which Jupiter does not run "
                    "(it is a command from the repository's config); commit that file by hand"
                )

    def revert(self, shas: list[str], message: str | None = None) -> list[str]:
        """Revert ``shas`` newest first, one revert commit each; returns their shas.

        All or nothing: on a conflict the revert is aborted, HEAD goes back to
        where it was before this call (the work tree was clean, so nothing of
        the user's is lost) and ConflictError names the commit and files. A
        commit whose change is already undone is skipped (so a rollback can be
        retried). ``message`` replaces git's ``Revert "<subject>"`` header;
        every revert commit keeps the line ``This reverts commit <sha>.``.
        """
        if not shas:
            return []
        self._refuse_unsettled("revert")
        orig = self.head()
        full: list[str] = []
        for sha in shas:
            proc = self._git("rev-parse", "--verify", "-q", f"{sha}^{{commit}}", check=False)
            if proc.returncode != 0 or sha.startswith("-"):
                raise InputError(f"{sha!r} is not a commit in {self.root}; give a commit sha")
            commit = proc.stdout.strip()
            anc = self._git("merge-base", "--is-ancestor", commit, orig, check=False)
            if anc.returncode != 0:
                raise InputError(
                    f"commit {commit[:12]} is not in the history of HEAD in {self.root}; "
                    "check out the delivery branch before reverting"
                )
            full.append(commit)
        env = self._commit_env()
        created: list[str] = []
        for commit in reversed(full):
            subject = self._git("log", "-1", "--format=%s", commit).stdout.strip()
            proc = self._git("revert", "--no-commit", commit, env=env, check=False)
            if proc.returncode != 0:
                conflicted = [
                    p
                    for p in self._git(
                        "diff", "--name-only", "-z", "--diff-filter=U", "--no-ext-diff"
                    ).stdout.split("\0")
                    if p
                ]
                self._undo_revert(orig)
                if conflicted:
                    raise ConflictError(
                        f"reverting commit {commit[:12]} ({subject!r}) conflicts in "
                        f"{_listing(conflicted)}, which later commits changed; nothing was "
                        "reverted: resolve by hand or revert those commits first"
                    )
                if self._merge_drivers and "cannot run" in proc.stderr:
                    raise ConflictError(
                        f"reverting commit {commit[:12]} ({subject!r}) needs a content merge, and "
                        f"the repository's merge drivers ({', '.join(sorted(self._merge_drivers))})"
                        " are commands Jupiter does not run; nothing was reverted: revert by hand"
                    )
                raise TargetError(
                    f"git revert of {commit[:12]} failed in {self.root}: "
                    f"{_first_line(proc.stderr or proc.stdout)}; nothing was reverted"
                )
            if not self._staged():
                self._git("revert", "--quit", check=False)
                continue
            header = message if message is not None else f'Revert "{subject}"'
            body = f"{header}\n\nThis reverts commit {commit}.\n"
            done = self._git(*_COMMIT, stdin=body, env=env, check=False)
            if done.returncode != 0:
                self._undo_revert(orig)
                raise TargetError(
                    f"committing the revert of {commit[:12]} failed in {self.root}: "
                    f"{_first_line(done.stderr or done.stdout)}; nothing was reverted"
                )
            created.append(self.head())
        return created

    def _undo_revert(self, orig: str) -> None:
        # The tree was clean when revert() began, so a hard reset to the
        # starting commit only discards what this call did.
        self._git("revert", "--abort", check=False)
        self._git("reset", "-q", "--hard", orig)

    def finish(self, start: BranchStart, return_to_previous: bool) -> None:
        """Optionally switch back to where the user was before ``start``.

        With ``return_to_previous`` the previous branch is checked out again
        (or the base commit, detached, if HEAD was detached); the delivery
        branch and its commits stay. Refuses a dirty work tree.
        """
        if not return_to_previous:
            return
        self._refuse_unsettled(f"leave branch {start.branch!r}")
        if start.previous_branch is not None:
            self._git("switch", "-q", "--no-guess", start.previous_branch)
        else:
            self._git("switch", "-q", "--detach", start.base)

    # -- publishing (pull requests) -----------------------------------------

    def remote_url(self, remote: str) -> str:
        """The push URL of ``remote``; InputError when the repository has none."""
        if remote.startswith("-") or not remote:
            raise InputError(f"{remote!r} is not a git remote name; use a name such as origin")
        proc = self._git("remote", "get-url", "--push", remote, check=False)
        if proc.returncode != 0:
            raise InputError(
                f"the repository at {self.root} has no remote {remote!r}; add it with "
                f"`git remote add {remote} URL` (or name another with --remote)"
            )
        return proc.stdout.strip()

    def remote_tip(self, remote: str, branch: str) -> str | None:
        """The sha ``branch`` points at on ``remote`` (None if it has no such branch)."""
        self.remote_url(remote)
        proc = self._git("ls-remote", "--heads", remote, f"refs/heads/{branch}", check=False)
        if proc.returncode != 0:
            raise InputError(
                f"could not reach the remote {remote!r} of {self.root}: "
                f"{redact_text(_first_line(proc.stderr))}; check its URL and credentials"
            )
        for line in proc.stdout.splitlines():
            sha, _, ref = line.partition("\t")
            if ref == f"refs/heads/{branch}":
                return sha
        return None

    def push(self, remote: str, sha: str, branch: str, expect: str | None) -> None:
        """Point ``branch`` on ``remote`` at ``sha`` with a lease: the remote
        branch must still be at ``expect`` (or not exist when ``expect`` is
        None), so commits someone else pushed there are never overwritten.
        ConflictError when the lease fails, InputError when the remote
        refuses; the local repository is unchanged either way."""
        for value in (sha, branch):
            if value.startswith("-"):
                raise InputError(f"{value!r} is not a commit or branch name")
        self.remote_url(remote)
        lease = f"--force-with-lease=refs/heads/{branch}:{expect or ''}"
        proc = self._git(
            "push",
            "--porcelain",
            "--no-verify",
            lease,
            remote,
            f"{sha}:refs/heads/{branch}",
            check=False,
        )
        if proc.returncode == 0:
            return
        text = redact_text(proc.stdout + "\n" + proc.stderr)
        if "stale info" in text or "fetch first" in text or "non-fast-forward" in text:
            raise ConflictError(
                f"branch {branch!r} on the remote {remote!r} has commits Jupiter did not push; "
                "it was not overwritten: merge or delete that branch, or choose another "
                "--git-branch"
            )
        reason = next(
            (ln.split("\t")[-1] for ln in text.splitlines() if ln.startswith("!")),
            _first_line(proc.stderr or proc.stdout),
        )
        raise InputError(
            f"the remote {remote!r} rejected the push of branch {branch!r} ({reason}); "
            "nothing was changed locally: check your push rights and the remote's branch rules"
        )

    def switch_back(self, branch: str) -> None:
        """Check out the existing ``branch`` again (refusing a dirty or
        unsettled work tree), e.g. the base branch after a delivery."""
        if branch.startswith("-") or self.branch_tip(branch) is None:
            raise InputError(f"branch {branch!r} does not exist in {self.root}")
        self._refuse_unsettled(f"switch to branch {branch!r}")
        self._git("switch", "-q", "--no-guess", branch)

    def branch_tip(self, branch: str) -> str | None:
        """The sha of the local ``branch``, None if it does not exist."""
        if branch.startswith("-"):
            return None
        proc = self._git("rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def authors_since(self, base: str, tip: str) -> set[str]:
        """Author e-mail addresses of the commits in ``base..tip``."""
        if base.startswith("-") or tip.startswith("-"):
            raise InputError("give commit shas")
        out = self._git("log", "--format=%ae", f"{base}..{tip}", "--").stdout
        return {line.strip() for line in out.splitlines() if line.strip()}

    def drop_own_branch(self, branch: str, base: str) -> None:
        """Delete the local ``branch`` so a re-run can deliver it again; only
        when it is not checked out and every commit on it since ``base`` was
        written by Jupiter (nothing a person wrote can be lost)."""
        tip = self.branch_tip(branch)
        if tip is None:
            return
        if self.current_branch() == branch:
            raise InputError(
                f"branch {branch!r} is checked out in {self.root}; switch back to the branch "
                "the fixes are made from (e.g. git switch main) and run again"
            )
        others = self.authors_since(base, tip) - {self.identity[1]}
        if others:
            raise InputError(
                f"local branch {branch!r} has commits by {', '.join(sorted(others))}, not only "
                "Jupiter's; it was kept: rename or delete it, or choose another --git-branch"
            )
        self._git("branch", "-q", "-D", branch)

    def build_branch(self, branch: str, base: str, commits: list[str]) -> str:
        """Make the local ``branch`` hold exactly ``commits`` (in order) on top
        of ``base`` by cherry-picking them, without touching the checked-out
        branch; returns its tip. All or nothing: on a conflict the branch is
        not created and ConflictError says so."""
        if any(c.startswith("-") for c in [branch, base, *commits]):
            raise InputError("give commit shas and a branch name")
        if self.branch_tip(branch) is not None:
            raise InputError(f"branch {branch!r} already exists in {self.root}")
        self._refuse_unsettled(f"create branch {branch!r}")
        previous = self.current_branch()
        orig = self.head()
        self._git("switch", "-q", "--no-track", "-c", branch, base)
        env = self._commit_env()
        try:
            for commit in commits:
                proc = self._git("cherry-pick", "--allow-empty", commit, env=env, check=False)
                if proc.returncode != 0:
                    self._git("cherry-pick", "--abort", check=False)
                    raise ConflictError(
                        f"the fix in commit {commit[:12]} does not apply on its own on top of "
                        f"{base[:12]} (it depends on another group's fix); deliver with "
                        "--group run or a coarser --group"
                    )
            tip = self.head()
        except BaseException:
            if previous is not None:
                self._git("switch", "-q", "-f", "--no-guess", previous, check=False)
            else:
                self._git("switch", "-q", "-f", "--detach", orig, check=False)
            self._git("branch", "-q", "-D", branch, check=False)
            raise
        if previous is not None:
            self._git("switch", "-q", "--no-guess", previous)
        else:
            self._git("switch", "-q", "--detach", orig)
        return tip

    def commits_since(self, base: str) -> list[str]:
        """Shas of the commits on HEAD after ``base``, oldest first."""
        if base.startswith("-"):
            raise InputError(f"{base!r} is not a commit; give a commit sha")
        out = self._git("rev-list", "--reverse", f"{base}..HEAD", "--").stdout
        return out.split()


__all__ = ["DEFAULT_IDENTITY", "SUBJECT_LIMIT", "BranchStart", "GitDelivery", "commit_message"]
