"""The sshd_config reader and the algorithm resolution behind the checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jupiter.errors import InputError, PathEscapeError
from jupiter.plugins.sshd import algorithms as algos
from jupiter.plugins.sshd.detect import parse_seconds
from jupiter.plugins.sshd.openssh import from_version
from jupiter.plugins.sshd.parse import include_pattern, parse, split_lines, tokenize
from jupiter.targets.local import LocalTarget


def make_host(root: Path, files: dict[str, str | bytes]) -> LocalTarget:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return LocalTarget(root)


def test_tokenize_forms_quotes_and_trailing_comment() -> None:
    assert tokenize("   # a comment\n") is None
    assert tokenize("\t\n") is None
    keyword, _, args, span = tokenize("MaxAuthTries=10\n")  # type: ignore[misc]
    assert (keyword, args) == ("MaxAuthTries", ["10"])
    assert "MaxAuthTries=10"[span[0] : span[1]] == "10"
    line = "permitrootlogin  yes   # TODO later"
    keyword, _, args, span = tokenize(line)  # type: ignore[misc]
    assert (keyword, args) == ("permitrootlogin", ["yes"])
    assert line[span[1] :] == "   # TODO later"
    _, _, args, _ = tokenize('MACs "hmac-sha2-512,hmac-sha1"')  # type: ignore[misc]
    assert args == ["hmac-sha2-512,hmac-sha1"]
    _, _, args, _ = tokenize("AuthorizedKeysFile 'my keys' .ssh/k#2")  # type: ignore[misc]
    assert args == ["my keys", ".ssh/k#2"]
    with pytest.raises(ValueError):
        tokenize('Banner "/etc/issue')


def test_split_lines_keeps_endings_and_ignores_other_separators() -> None:
    assert split_lines("a\r\nb\x0cc\nd") == ["a\r\n", "b\x0cc\n", "d"]
    assert split_lines("") == []


def test_first_value_wins_case_insensitive_and_aliases(tmp_path: Path) -> None:
    view = make_host(
        tmp_path,
        {
            "etc/ssh/sshd_config": (
                "PERMITROOTLOGIN yes\npermitrootlogin no\n"
                "ChallengeResponseAuthentication no\nKbdInteractiveAuthentication yes\n"
            )
        },
    )
    config = parse(view)
    assert config is not None
    root = config.effective("PermitRootLogin")
    assert root is not None and (root.line, root.value) == (1, "yes")
    kbd = config.effective("KbdInteractiveAuthentication")
    assert kbd is not None and (kbd.raw_keyword, kbd.line) == ("ChallengeResponseAuthentication", 3)


def test_include_order_globs_relative_paths_and_match_scope(tmp_path: Path) -> None:
    view = make_host(
        tmp_path,
        {
            "etc/ssh/sshd_config": (
                "Include /etc/ssh/sshd_config.d/*.conf\n"
                "Include extra/tail.conf missing.conf\n"
                "X11Forwarding no\n"
                "Match User a\n  Include inmatch.conf\n"
            ),
            "etc/ssh/sshd_config.d/20-b.conf": "PasswordAuthentication no\n",
            "etc/ssh/sshd_config.d/10-a.conf": "Match User x\n  PasswordAuthentication yes\n",
            "etc/ssh/sshd_config.d/.hidden.conf": "PermitRootLogin yes\n",
            "etc/ssh/sshd_config.d/README": "PermitRootLogin yes\n",
            "etc/ssh/extra/tail.conf": "MaxAuthTries 3\n",
            "etc/ssh/inmatch.conf": "AllowTcpForwarding yes\n",
        },
    )
    config = parse(view)
    assert config is not None
    order = [(d.path.rsplit("/", 1)[-1], d.keyword) for d in config.directives]
    assert order == [
        ("10-a.conf", "passwordauthentication"),
        ("20-b.conf", "passwordauthentication"),
        ("tail.conf", "maxauthtries"),
        ("sshd_config", "x11forwarding"),
        ("inmatch.conf", "allowtcpforwarding"),
    ]
    # the Match in 10-a.conf ends with that file: 20-b.conf is global again
    pw = config.effective("PasswordAuthentication")
    assert pw is not None and pw.path == "etc/ssh/sshd_config.d/20-b.conf"
    x11 = config.effective("X11Forwarding")
    assert x11 is not None and x11.match is None
    # an Include inside a Match block includes into that block
    tcp = config.directives[-1]
    assert tcp.match is not None and tcp.match.criteria == "User a"
    assert config.effective("AllowTcpForwarding") is None
    assert config.effective("PermitRootLogin") is None  # dot file and README not included


def test_match_all_counts_towards_the_global_value(tmp_path: Path) -> None:
    view = make_host(tmp_path, {"etc/ssh/sshd_config": "Match all\n  PasswordAuthentication no\n"})
    config = parse(view)
    assert config is not None
    d = config.effective("PasswordAuthentication")
    assert d is not None and d.match is not None and d.match.is_all


def test_include_outside_target_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.conf"
    outside.write_text("PermitRootLogin yes\n")
    root = tmp_path / "host"
    view = make_host(root, {"etc/ssh/sshd_config": "Include sshd_config.d/*.conf\n"})
    (root / "etc/ssh/sshd_config.d").mkdir()
    os.symlink(outside, root / "etc/ssh/sshd_config.d/evil.conf")
    config = parse(view)
    assert config is not None
    assert config.effective("PermitRootLogin") is None
    assert any("evil.conf" in p or "not followed" in p for p in config.problems)


def test_include_pattern_maps_into_the_target() -> None:
    assert include_pattern("/etc/ssh/sshd_config.d/*.conf") == "etc/ssh/sshd_config.d/*.conf"
    assert include_pattern("local.conf") == "etc/ssh/local.conf"
    assert include_pattern("/../../etc/x") == "etc/x"  # cannot climb above the root
    with pytest.raises(PathEscapeError):
        include_pattern("/")


def test_missing_main_config_and_non_utf8(tmp_path: Path) -> None:
    assert parse(make_host(tmp_path / "a", {"etc/ssh/ssh_config": "Host *\n"})) is None
    view = make_host(tmp_path / "b", {"etc/ssh/sshd_config": b"Banner \xff\n"})
    with pytest.raises(InputError, match="not UTF-8"):
        parse(view)


def test_include_loop_stops_at_sshd_depth(tmp_path: Path) -> None:
    view = make_host(tmp_path, {"etc/ssh/sshd_config": "Include sshd_config\nPort 22\n"})
    config = parse(view)
    assert config is not None
    assert any("too deeply" in p for p in config.problems)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("120", 120), ("2m", 120), ("1m30s", 90), ("1H", 3600), ("0", 0), ("x", None), ("", None)],
)
def test_parse_seconds(text: str, seconds: int | None) -> None:
    assert parse_seconds(text) == seconds


def test_algorithm_lists_resolve_like_sshd() -> None:
    ssh = from_version((9, 2), "test")
    default = list(ssh.defaults["macs"])
    assert algos.resolve("macs", None, ssh) == default
    assert algos.resolve("macs", "+hmac-md5", ssh)[-1] == "hmac-md5"
    assert algos.resolve("macs", "^hmac-md5", ssh)[0] == "hmac-md5"
    stripped = algos.resolve("macs", "-*sha1*,umac-64*", ssh)
    assert stripped and not [m for m in stripped if algos.is_broken("macs", m)]
    assert algos.resolve("ciphers", "aes*-cbc", ssh) == ["aes128-cbc", "aes192-cbc", "aes256-cbc"]
    assert algos.fixed_list("ciphers", "aes128-cbc,aes256-ctr", "strict", ssh) == "aes256-ctr"
    assert algos.fixed_list("ciphers", "3des-cbc", "strict", ssh) == ",".join(
        algos.STRONGEST["ciphers"]
    )
    assert algos.fixed_list("ciphers", "aes256-ctr", "maximum", ssh) == "aes256-ctr"
    assert algos.fixed_list("kexalgorithms", "curve25519-sha256", "maximum", ssh) == (
        "sntrup761x25519-sha512@openssh.com"
    )
    assert algos.not_allowed("kexalgorithms", ["curve25519-sha256"], "strict", ssh) == []
    assert algos.not_allowed("kexalgorithms", ["curve25519-sha256"], "maximum", ssh)
    assert algos.not_allowed("kexalgorithms", ["diffie-hellman-group14-sha1"], "strict", ssh)
