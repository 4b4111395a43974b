"""Blue-green slots (jupiter.targets.bluegreen) on local directories and over
SSH (tests/sshserver.py), checked on the real files."""

from __future__ import annotations

import os
import re
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.fleet import EXAMPLE_HOST, build_fleet, tree_bytes

from jupiter.errors import InputError, PathEscapeError, TargetError
from jupiter.models import BlueGreenLayout
from jupiter.targets.base import Target
from jupiter.targets.bluegreen import Slots, tree_digest
from jupiter.targets.local import LocalTarget
from jupiter.targets.ssh import SSHTarget

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sshserver import SSHTestServer, running_server

LAYOUT = BlueGreenLayout()
Opener = Callable[[Path], Target]


@pytest.fixture(scope="module")
def ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHTestServer]:
    with running_server(tmp_path_factory.mktemp("ssh")) as srv:
        yield srv


def _ssh(server: SSHTestServer, root: Path) -> SSHTarget:
    return SSHTarget(
        server.host,
        server.port,
        server.username,
        str(root),
        client_keys=[server.client_key],
        known_hosts=server.known_hosts,
        connect_timeout=5.0,
        command_timeout=10.0,
    )


@pytest.fixture(params=["local", "ssh"])
def opener(request: pytest.FixtureRequest) -> Iterator[Opener]:
    opened: list[Target] = []

    def open_(root: Path) -> Target:
        if request.param == "local":
            target: Target = LocalTarget(root)
        else:
            target = _ssh(request.getfixturevalue("ssh_server"), root)
        opened.append(target)
        return target

    yield open_
    for target in opened:
        target.close()


def bg_root(tmp_path: Path) -> Path:
    """One blue-green root: blue = examples/host plus an empty directory, an
    in-slot symlink and a 0600 file; green holds stale content."""
    root = build_fleet(tmp_path / "fleet", 1, servers=False, blue_green=True).targets[0].root
    blue = root / "blue"
    (blue / "var/empty").mkdir(parents=True)
    (blue / "var/empty").chmod(0o700)
    (blue / "etc/secret.key").write_bytes(b"k")
    (blue / "etc/secret.key").chmod(0o600)
    (blue / "etc/sshd").symlink_to("ssh")
    (root / "green/stale/deeper").mkdir(parents=True)
    (root / "green/stale/deeper/old.conf").write_text("old\n")
    (root / "green/etc").mkdir()
    (root / "green/etc/ssh").write_text("a file where blue has a directory\n")
    return root


def modes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out[p.relative_to(root).as_posix()] = stat.S_IMODE(p.lstat().st_mode)
    return out


def test_prepare_switch_and_switch_back(tmp_path: Path, opener: Opener) -> None:
    root = bg_root(tmp_path)
    slots = Slots(opener(root), LAYOUT, asset="web-1")
    assert (slots.live(), slots.idle()) == ("blue", "green")

    slots.prepare_idle()
    assert tree_bytes(root / "green") == tree_bytes(root / "blue")
    assert modes(root / "green") == modes(root / "blue")
    assert (root / "green/etc/sshd").readlink() == Path("ssh")
    assert not (root / "green/stale").exists()
    blue_before = tree_bytes(root / "blue")

    # Change the idle slot through its own target, then go live with it.
    idle = slots.slot_target("green")
    try:
        assert idle.describe().endswith("/green")
        config = idle.read_bytes("etc/ssh/sshd_config")
        idle.write_bytes(
            "etc/ssh/sshd_config", config.replace(b"PermitRootLogin yes", b"PermitRootLogin no")
        )
        assert idle.run(["pwd"], 10).stdout.strip() == str(root / "green")
        with pytest.raises(PathEscapeError):
            idle.read_bytes("../blue/etc/ssh/sshd_config")
    finally:
        idle.close()
    assert slots.switch("green") == "blue"
    assert os.readlink(root / "current") == "green"
    assert b"PermitRootLogin no" in (root / "current/etc/ssh/sshd_config").read_bytes()
    assert tree_bytes(root / "blue") == blue_before  # the old slot is kept as it was

    # Switch back: the old slot is live again, byte for byte.
    assert slots.switch("blue") == "green"
    assert os.readlink(root / "current") == "blue"
    assert tree_bytes(root / "current") == blue_before
    assert slots.switch("blue") == "blue"  # already live: nothing to do
    assert sorted(os.listdir(root)) == ["blue", "current", "green"]  # no temp links left


def test_prepare_idle_creates_a_missing_slot(tmp_path: Path, opener: Opener) -> None:
    root = bg_root(tmp_path)
    (root / "current").unlink()
    (root / "current").symlink_to("green")
    os.rename(root / "blue", root / "green-src")
    os.rename(root / "green", root / "trash")
    os.rename(root / "green-src", root / "green")
    slots = Slots(opener(root), LAYOUT)
    assert slots.idle() == "blue"
    slots.prepare_idle()
    assert tree_bytes(root / "blue") == tree_bytes(root / "green")
    assert stat.S_IMODE((root / "blue").stat().st_mode) == stat.S_IMODE(
        (root / "green").stat().st_mode
    )


def _reader(link: Path, stop: threading.Event, seen: set[str], errors: list[BaseException]) -> None:
    while not stop.is_set():
        try:
            seen.add(os.readlink(link))
            os.stat(link)  # and it resolves
            time.sleep(0)  # let the switching thread have the GIL too
        except BaseException as exc:  # noqa: BLE001 - any failure is the finding
            errors.append(exc)
            return


@pytest.mark.parametrize("kind,switches", [("local", 200), ("ssh", 20)])
def test_switch_is_atomic_for_readers(
    tmp_path: Path, kind: str, switches: int, request: pytest.FixtureRequest
) -> None:
    root = tmp_path / "bg"
    (root / "blue").mkdir(parents=True)
    (root / "green").mkdir()
    (root / "current").symlink_to("blue")
    if kind == "local":
        target: Target = LocalTarget(root)
    else:
        target = _ssh(request.getfixturevalue("ssh_server"), root)
    stop, seen, errors = threading.Event(), set[str](), list[BaseException]()
    reader = threading.Thread(target=_reader, args=(root / "current", stop, seen, errors))
    reader.start()
    try:
        slots = Slots(target, LAYOUT)
        for i in range(switches):
            assert slots.switch("green" if i % 2 == 0 else "blue") == (
                "blue" if i % 2 == 0 else "green"
            )
    finally:
        stop.set()
        reader.join()
        target.close()
    assert errors == []
    assert seen == {"blue", "green"}
    assert sorted(os.listdir(root)) == ["blue", "current", "green"]


@pytest.mark.parametrize(
    "arrange,message",
    [
        (lambda r: (r / "current").unlink(), "blue_green link 'current' does not exist"),
        (
            lambda r: ((r / "current").unlink(), (r / "current").mkdir()),
            "asset web-1: blue_green link 'current' is not a symlink (it is a dir)",
        ),
        (
            lambda r: ((r / "current").unlink(), (r / "current").symlink_to("/etc")),
            "blue_green link 'current' points to '/etc', outside the slots",
        ),
        (
            lambda r: ((r / "current").unlink(), (r / "current").symlink_to("blue/etc")),
            "points to 'blue/etc', outside the slots",
        ),
        (
            lambda r: ((r / "current").unlink(), (r / "current").symlink_to("../x/blue")),
            "points to '../x/blue', outside the slots",
        ),
        (
            lambda r: (os.rename(r / "blue", r / "b2"), (r / "blue").symlink_to("b2")),
            "blue_green slot 'blue' is a symlink, not a directory",
        ),
    ],
)
def test_bad_layouts_are_refused(
    tmp_path: Path, opener: Opener, arrange: Callable[[Path], object], message: str
) -> None:
    root = bg_root(tmp_path)
    arrange(root)
    before = tree_bytes(root)
    slots = Slots(opener(root), LAYOUT, asset="web-1")
    for call in (slots.live, slots.prepare_idle, lambda: slots.switch("green")):
        with pytest.raises(InputError, match=re.escape(message)):
            call()
    assert tree_bytes(root) == before


def test_idle_slot_that_is_a_symlink_is_never_written_through(
    tmp_path: Path, opener: Opener
) -> None:
    root = bg_root(tmp_path)
    for p in sorted((root / "green").rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    (root / "green").rmdir()
    (root / "green").symlink_to("blue")
    before = tree_bytes(root / "blue")
    slots = Slots(opener(root), LAYOUT, asset="web-1")
    with pytest.raises(InputError, match="slot 'green' is a symlink"):
        slots.prepare_idle()
    with pytest.raises(InputError, match="slot 'green' is a symlink"):
        slots.switch("green")
    assert tree_bytes(root / "blue") == before


def test_symlink_leaving_the_slot_is_refused(tmp_path: Path, opener: Opener) -> None:
    root = bg_root(tmp_path)
    (root / "blue/etc/escape").symlink_to("../../green")
    before = tree_bytes(root)
    message = "symlink 'etc/escape' to '../../green', which leaves"
    with pytest.raises(InputError, match=re.escape(message)):
        Slots(opener(root), LAYOUT, asset="web-1").prepare_idle()
    assert tree_bytes(root) == before  # refused before anything was copied


def test_layout_paths_are_checked(tmp_path: Path) -> None:
    target = LocalTarget(tmp_path)
    for layout, message in [
        (BlueGreenLayout(link="blue", slots=["blue", "green"]), "overlap"),
        (BlueGreenLayout(link="current", slots=["blue", "blue/x"]), "overlap"),
        (BlueGreenLayout(link="../current"), "not a plain path"),
        (BlueGreenLayout(slots=["/srv/blue", "green"]), "not a plain path"),
    ]:
        with pytest.raises(InputError, match=message):
            Slots(target, layout)
    slots = Slots(target, LAYOUT)
    with pytest.raises(InputError, match="'red' is not a blue_green slot"):
        slots.switch("red")
    with pytest.raises(InputError, match="'red' is not a blue_green slot"):
        slots.slot_target("red")


def test_nested_link_and_slots(tmp_path: Path, opener: Opener) -> None:
    root = tmp_path / "app"
    (root / "releases/a").mkdir(parents=True)
    (root / "releases/b").mkdir()
    (root / "releases/a/app.conf").write_text("x=1\n")
    (root / "run").mkdir()
    (root / "run/live").symlink_to("../releases/a")
    slots = Slots(
        opener(root), BlueGreenLayout(link="run/live", slots=["releases/a", "releases/b"])
    )
    assert slots.live() == "releases/a"
    slots.prepare_idle()
    assert slots.switch("releases/b") == "releases/a"
    assert os.readlink(root / "run/live") == "../releases/b"
    assert (root / "run/live/app.conf").read_text() == "x=1\n"


def test_ssh_sub_target_shares_the_connection(tmp_path: Path, ssh_server: SSHTestServer) -> None:
    root = tmp_path / "root"
    (root / "slot").mkdir(parents=True)
    (root / "other").mkdir()
    (root / "slot/up").symlink_to("../other")
    before = ssh_server.connection_count()
    with _ssh(ssh_server, root) as parent:
        child = parent.sub_target("slot")
        child.write_bytes("a/b.conf", b"b\n", mode=0o640)
        assert (root / "slot/a/b.conf").read_bytes() == b"b\n"
        assert child.glob("*") == ["a", "up"]
        with pytest.raises(PathEscapeError):
            child.read_bytes("up/x")  # in the parent's root, but outside the slot
        child.close()
        with pytest.raises(TargetError, match="closed"):
            child.stat("a")
        assert parent.stat("slot/a/b.conf") is not None  # the parent still works
        with pytest.raises(TargetError, match="not a directory"):
            parent.sub_target("slot/up")
    assert ssh_server.connection_count() - before == 1
    with pytest.raises(TargetError, match="closed"):
        child.stat("a")


def test_local_sub_target(tmp_path: Path) -> None:
    (tmp_path / "slot").mkdir()
    (tmp_path / "link").symlink_to("slot")
    target = LocalTarget(tmp_path)
    assert target.sub_target("slot").root == tmp_path.resolve() / "slot"
    with pytest.raises(TargetError, match="not a directory"):
        target.sub_target("link")
    with pytest.raises(TargetError, match="not a directory"):
        target.sub_target("nope")


def test_digest_sees_modes_and_links(tmp_path: Path) -> None:
    root = tmp_path / "t"
    import shutil

    shutil.copytree(EXAMPLE_HOST, root)
    target = LocalTarget(root)
    first = tree_digest(target)
    (root / "etc/ssh/sshd_config").chmod(0o600)
    second = tree_digest(target)
    (root / "etc/l").symlink_to("ssh")
    third = tree_digest(target)
    assert len({first, second, third}) == 3
