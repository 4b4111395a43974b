"""Blue-green slots on a target: two directories and a symlink naming the live one.

An asset that declares ``blue_green: {link: current, slots: [blue, green]}``
keeps its files in ``ROOT/blue`` and ``ROOT/green``; ``ROOT/current`` is a
symlink to the live slot. A deploy copies the live slot to the idle one
(:meth:`Slots.prepare_idle`), fixes and verifies the idle slot through
:meth:`Slots.slot_target`, then :meth:`Slots.switch` points the link at it
atomically. The old slot stays as it was, so switching back is one more
:meth:`Slots.switch`.

The switch is a new symlink at a temp name renamed over the link (locally
with ``symlink``/``rename``, over SSH with ``ln -s`` and ``mv -T``), so a
process resolving the link sees the old slot or the new one, never nothing.
See docs/bluegreen.md.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import posixpath
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, runtime_checkable

from jupiter.errors import InputError, PathEscapeError, TargetError
from jupiter.models import BlueGreenLayout
from jupiter.targets.base import FileState, Target, normalise_relpath
from jupiter.targets.local_links import link_value

_PARALLEL_COPIES = 8  # files copied at once (each is a few SSH round trips)


@runtime_checkable
class SlottedTarget(Target, Protocol):
    """What a target needs for blue-green slots (LocalTarget and SSHTarget have it)."""

    def read_link(self, path: str) -> str: ...

    def replace_link(self, path: str, value: str) -> None: ...

    def make_dir(self, path: str, mode: int = 0o755) -> None: ...

    def remove_dir(self, path: str) -> None: ...

    def list_tree(self) -> list[FileState]: ...

    def sub_target(self, path: str) -> Target: ...


class Slots:
    """The blue-green layout of one asset's target (see the module docstring).

    ``asset`` names the asset in error messages (default: the target).
    """

    def __init__(
        self, target: Target, layout: BlueGreenLayout, *, asset: str | None = None
    ) -> None:
        self._name = f"asset {asset}" if asset else f"target {target.describe()}"
        if not isinstance(target, SlottedTarget):
            raise InputError(
                f"{self._name}: {target.describe()} cannot hold blue-green slots (no symlink "
                "support); use a local or SSH connection"
            )
        self._target: SlottedTarget = target
        self.link = self._relpath("link", layout.link)
        first, second = (self._relpath("slot", s) for s in layout.slots)
        paths = [self.link, first, second]
        for i, a in enumerate(paths):
            for b in paths[i + 1 :]:
                if a == b or a.startswith(b + "/") or b.startswith(a + "/"):
                    raise InputError(
                        f"{self._name}: blue_green paths {a!r} and {b!r} overlap; give a link "
                        "and two slots that are separate paths"
                    )
        self.slots: tuple[str, str] = (first, second)

    def _relpath(self, what: str, path: str) -> str:
        try:
            return normalise_relpath(path)
        except PathEscapeError as exc:
            raise InputError(
                f"{self._name}: blue_green {what} {path!r} is not a plain path below the asset's "
                "root; use a relative path such as 'current' or 'blue'"
            ) from exc

    # -- reading the layout ----------------------------------------------

    def live(self) -> str:
        """The slot the link names; InputError when the link is missing, not a
        symlink, or points anywhere but one of the slots."""
        st = self._target.stat(self.link)
        choices = " or ".join(repr(s) for s in self.slots)
        if st is None:
            raise InputError(
                f"{self._name}: blue_green link {self.link!r} does not exist; create it as a "
                f"symlink to {choices}"
            )
        if st.kind != "symlink":
            raise InputError(
                f"{self._name}: blue_green link {self.link!r} is not a symlink (it is a "
                f"{st.kind}); make it a symlink to {choices}"
            )
        value = self._target.read_link(self.link)
        named = None
        if not value.startswith("/"):
            named = posixpath.normpath(posixpath.join(posixpath.dirname(self.link), value))
        if named not in self.slots:
            raise InputError(
                f"{self._name}: blue_green link {self.link!r} points to {value!r}, outside the "
                f"slots; point it at {choices}"
            )
        self._require_dir(named)
        return named

    def idle(self) -> str:
        """The slot the link does not name."""
        live = self.live()
        return self.slots[1] if live == self.slots[0] else self.slots[0]

    def _require_dir(self, slot: str) -> FileState:
        st = self._target.stat(slot)
        if st is None or st.kind != "dir":
            what = "missing" if st is None else f"a {st.kind}"
            raise InputError(
                f"{self._name}: blue_green slot {slot!r} is {what}, not a directory; make it a "
                "real directory below the asset's root"
            )
        return st

    def slot_target(self, slot: str) -> Target:
        """A target rooted at ``slot`` (local, or SSH on the same connection)."""
        if slot not in self.slots:
            raise InputError(
                f"{self._name}: {slot!r} is not a blue_green slot; use one of "
                f"{', '.join(self.slots)}"
            )
        self._require_dir(slot)
        return self._target.sub_target(slot)

    # -- changing it -----------------------------------------------------

    def prepare_idle(self) -> None:
        """Make the idle slot an exact copy of the live one (files, directories,
        in-slot symlinks, modes, and owners where they differ), then prove it
        by comparing both trees' digests."""
        live = self.live()
        idle = self.slots[1] if live == self.slots[0] else self.slots[0]
        live_st = self._require_dir(live)
        idle_st = self._target.stat(idle)
        if idle_st is None:
            self._target.make_dir(idle, 0o700)
        elif idle_st.kind != "dir":
            self._require_dir(idle)
        source, dest = self.slot_target(live), self.slot_target(idle)
        try:
            copied = _mirror(source, dest, self._name, live)
            self._target.set_mode(idle, live_st.mode)
            if tree_digest(dest) != copied:
                raise TargetError(
                    f"{self._name}: blue_green slot {idle!r} differs from {live!r} after copying "
                    "(something changed the slots meanwhile); run again"
                )
        finally:
            source.close()
            dest.close()

    def switch(self, to: str) -> str:
        """Point the link at slot ``to`` atomically; returns the slot that was
        live before (switching back is ``switch(previous)``)."""
        if to not in self.slots:
            raise InputError(
                f"{self._name}: {to!r} is not a blue_green slot; use one of {', '.join(self.slots)}"
            )
        previous = self.live()
        self._require_dir(to)
        if to != previous:
            value = posixpath.relpath(to, posixpath.dirname(self.link) or ".")
            self._target.replace_link(self.link, value)
        return previous


def _tree(target: Target) -> dict[str, FileState]:
    """Every entry below the root (files, directories, symlinks, others);
    symlinked directories are not descended into."""
    if isinstance(target, SlottedTarget):
        return {st.path: st for st in target.list_tree()}
    out: dict[str, FileState] = {}
    frontier = [""]
    while frontier:  # one glob per directory for targets without list_tree
        nxt: list[str] = []
        for base in frontier:
            for rel in target.glob(f"{globlib.escape(base)}/*" if base else "*"):
                st = target.stat(rel)
                if st is not None:
                    out[rel] = st
                    if st.kind == "dir":
                        nxt.append(rel)
        frontier = nxt
    return out


def _digest(entries: dict[str, FileState], content: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for rel, st in sorted(entries.items()):
        h.update(f"{rel}\0{st.kind}\0{st.mode:o}\0".encode())
        h.update(content.get(rel, b""))
        h.update(b"\n")
    return h.hexdigest()


def tree_digest(target: Target) -> str:
    """SHA-256 over every entry's path, kind, mode and content (a file's
    SHA-256, a symlink's text): equal digests mean equal trees for a switch."""
    entries = _tree(target)

    def read(rel: str) -> tuple[str, bytes]:
        if entries[rel].kind == "file":
            return rel, hashlib.sha256(target.read_bytes(rel)).digest()
        if isinstance(target, SlottedTarget):
            return rel, target.read_link(rel).encode()
        return rel, b""

    items = [rel for rel, st in entries.items() if st.kind in ("file", "symlink")]
    with ThreadPoolExecutor(max_workers=_PARALLEL_COPIES) as pool:
        return _digest(entries, dict(pool.map(read, items)))


def _mirror(source: Target, dest: Target, name: str, live: str) -> str:
    """Make ``dest``'s tree equal ``source``'s; returns the digest (as
    :func:`tree_digest`) of the source as it was read."""
    if not isinstance(source, SlottedTarget) or not isinstance(dest, SlottedTarget):
        raise InputError(f"{name}: slot targets cannot hold symlinks; use a local or SSH target")
    want, have = _tree(source), _tree(dest)
    for rel, st in want.items():
        if st.kind == "other":
            raise InputError(
                f"{name}: slot {live!r} holds {rel!r}, which is neither a file, a directory nor "
                "a symlink; remove it before a blue-green deploy"
            )
    links = {rel: source.read_link(rel) for rel, st in want.items() if st.kind == "symlink"}
    for rel, value in links.items():
        try:
            link_value(rel, value)
        except PathEscapeError as exc:
            raise InputError(
                f"{name}: slot {live!r} holds symlink {rel!r} to {value!r}, which leaves the "
                "slot; Jupiter copies only symlinks that stay inside it"
            ) from exc
    # Deepest first, so a directory is empty when its turn comes.
    for rel in sorted(have, key=lambda p: (-p.count("/"), p)):
        if rel not in want or want[rel].kind != have[rel].kind:
            if have[rel].kind == "dir":
                dest.remove_dir(rel)
            else:
                dest.remove(rel)
    order = sorted(want, key=lambda p: (p.count("/"), p))
    for rel in order:  # directories first, parents before children
        if want[rel].kind == "dir":
            dest.make_dir(rel, 0o700 | want[rel].mode)

    def copy(rel: str) -> tuple[str, bytes]:
        st, old = want[rel], have.get(rel)
        if old is not None and old.kind != st.kind:
            old = None
        if st.kind == "file":
            data = source.read_bytes(rel)
            if old is None or old.size != st.size or dest.read_bytes(rel) != data:
                dest.write_bytes(rel, data, st.mode)
            elif old.mode != st.mode:
                dest.set_mode(rel, st.mode)
            return rel, hashlib.sha256(data).digest()
        value = links[rel]
        if old is None or dest.read_link(rel) != value:
            dest.replace_link(rel, value)
        return rel, value.encode()

    # Files and links are independent: copy a few at a time (SSH round trips).
    items = [rel for rel in order if want[rel].kind in ("file", "symlink")]
    with ThreadPoolExecutor(max_workers=_PARALLEL_COPIES) as pool:
        content = dict(pool.map(copy, items))
    after = _tree(dest)
    for rel, st in sorted(want.items(), key=lambda item: (-item[0].count("/"), item[0])):
        now = after.get(rel)
        if now is None:
            continue
        if st.kind == "dir" and now.mode != st.mode:
            dest.set_mode(rel, st.mode)
        if st.kind != "symlink" and (now.uid, now.gid) != (st.uid, st.gid) and st.uid >= 0:
            dest.set_owner(rel, st.uid, st.gid)
    return _digest(want, content)
