"""Every editor keeps each file's line endings: the contract fixture of each
built-in, turned CRLF, is fixed through the engine; every file it changed is
still CRLF only (no line ends in a bare LF), and planning again is empty.
The exception is nftables, whose CRLF ruleset nft cannot read: it is replaced
whole with LF only, never left mixed."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupiter.engine import Engine
from jupiter.plugins.kit import keep_line_endings, line_ending
from jupiter.plugins.registry import load_registry
from tests.conftest import FIXTURES
from tests.plugins.test_contract import BUILTINS, CONTRACT, _bare_host

# Domains that edit text (file-permissions only changes modes).
EDITORS = [name for name in BUILTINS if name != "file-permissions"]


def to_crlf(root: Path) -> dict[Path, bytes]:
    """Rewrite every text file under ``root`` with CRLF; returns them."""
    out: dict[Path, bytes] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if "\n" not in text:
            continue
        crlf = text.replace("\r\n", "\n").replace("\n", "\r\n").encode()
        path.write_bytes(crlf)
        out[path] = crlf
    return out


def _host_with_open_firewall(tmp: Path) -> Path:
    """The contract's host with Debian's default (accept-all) ruleset to replace."""
    dst = _bare_host(tmp)
    (dst / "etc/nftables.conf").write_bytes((FIXTURES / "firewall/debian-default.nft").read_bytes())
    return dst


@pytest.mark.parametrize("name", EDITORS)
def test_crlf_files_stay_crlf_and_replan_is_empty(
    name: str, sqlite_engine: Engine, tmp_path: Path
) -> None:
    engine = sqlite_engine  # line endings do not depend on the workspace database
    plugin = load_registry().get(name)
    make = _host_with_open_firewall if name == "nftables-firewall" else CONTRACT[name](engine)
    target = make(tmp_path)
    originals = to_crlf(target)
    assert originals, f"{name}: its fixture has no text file"
    only = sorted(plugin.rule_ids)

    first = engine.fix(str(target), only=only)
    changed = [s for s in first["steps"] if s["remediator"] == name and s["status"] == "verified"]
    assert changed, f"{name} fixed nothing on its CRLF fixture: {first['steps']}"
    edited = [p for p, data in originals.items() if p.read_bytes() != data]
    assert edited, f"{name}: no file changed"
    # nft cannot read CRLF at all: its ruleset is replaced whole, LF only (and says so)
    style = "\n" if name == "nftables-firewall" else "\r\n"
    for path in edited:
        text = path.read_bytes().decode()
        assert line_ending(text) == style, f"{name}: {path.relative_to(target)} is now mixed"
    if name == "nftables-firewall":
        assert any("CRLF" in w for s in changed for w in s["risk"]["warnings"])

    again = engine.fix(str(target), only=only, dry_run=True)
    leftovers = [s for s in again["steps"] if s["remediator"] == name and s["changes"]]
    assert leftovers == [], f"{name}: planning again after the CRLF fix is not empty"


def test_keep_line_endings() -> None:
    assert keep_line_endings("a\r\nb\r\n", "a\nx\r\nb\n") == "a\r\nx\r\nb\r\n"
    assert keep_line_endings("a\nb\n", "a\r\nb\n") == "a\nb\n"
    assert keep_line_endings("a\r\nb\n", "a\nb\n") == "a\nb\n"  # mixed: no style to keep
    assert keep_line_endings(None, "a\n") == "a\n"
    assert keep_line_endings("no newline", "a\nb") == "a\nb"
    assert keep_line_endings("a\x0cb\r\n", "a\x0cb\nc\n") == "a\x0cb\r\nc\r\n"  # form feed stays
    assert line_ending("x") is None and line_ending("x\r\ny\n") is None
