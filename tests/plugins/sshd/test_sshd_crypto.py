"""The version-aware crypto policy: which OpenSSH, which lists per level, legacy
clients, host keys and DH moduli."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from jupiter.plans import Plan
from jupiter.plugins.sshd import algorithms as algos
from jupiter.plugins.sshd import keyfiles, openssh
from jupiter.plugins.sshd.fix import SshdParams
from jupiter.plugins.sshd.openssh import from_version, parse_version
from jupiter.targets.base import CommandResult
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView
from tests.plugins.sshd.test_sshd_remediate import PLUGIN, apply
from tests.sshserver import running_server
from tests.targets.test_ssh_target import make_target

MAIN = "etc/ssh/sshd_config"
V92 = from_version((9, 2), "test")


def target_with(tmp_path: Path, text: str, extra: dict[str, str] | None = None) -> LocalTarget:
    for rel, content in {MAIN: text, **(extra or {})}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(content)
    return LocalTarget(tmp_path)


def by_rule(target: LocalTarget, params: SshdParams) -> dict[str, object]:
    return {f.rule_id: f for f in PLUGIN.detect(target, params)}


# ------------------------------------------------------------ which OpenSSH


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024", (9, 2)),
        ("9.2", (9, 2)),
        ("8.4p1", (8, 4)),
        ("OpenSSH_for_Windows_8.1p1", None),
        ("nine", None),
    ],
)
def test_parse_version(text: str, version: tuple[int, int] | None) -> None:
    assert parse_version(text) == version


def test_release_table_follows_openssh_history() -> None:
    old, v85, v99 = from_version((7, 4), "t"), from_version((8, 5), "t"), from_version((9, 9), "t")
    assert "sntrup761x25519-sha512@openssh.com" not in old.supported["kexalgorithms"]
    assert "ssh-rsa" in old.defaults["hostkeyalgorithms"]  # SHA-1 RSA until 8.8
    assert "ssh-rsa" not in V92.defaults["hostkeyalgorithms"]
    assert "sntrup761x25519-sha512@openssh.com" in v85.defaults["kexalgorithms"]
    assert V92.defaults["kexalgorithms"][0] == "sntrup761x25519-sha512@openssh.com"
    assert "mlkem768x25519-sha256" in v99.supported["kexalgorithms"]
    assert "ecdh-sha2-nistp256" in V92.defaults["kexalgorithms"]
    assert not old.has_required_rsa_size and V92.has_required_rsa_size
    assert old.pubkey_keyword == "PubkeyAcceptedKeyTypes"


def test_probe_reads_the_binaries_and_says_where() -> None:
    calls: list[list[str]] = []

    def run(argv: list[str]) -> CommandResult:
        calls.append(argv)
        if argv == ["ssh", "-V"]:
            return CommandResult(tuple(argv), 0, "", "OpenSSH_9.9p1, OpenSSL 3.4.0\n")
        if argv[-1] == "kex":
            return CommandResult(tuple(argv), 0, "mlkem768x25519-sha256\ncurve25519-sha256\n", "")
        return CommandResult(tuple(argv), 1, "", "unknown query\n")

    found = openssh.probe(run, "on ssh:root@web-1")
    assert found.version == (9, 9) and found.source == "OpenSSH 9.9 on ssh:root@web-1"
    assert found.supported["kexalgorithms"] == ("mlkem768x25519-sha256", "curve25519-sha256")
    assert found.defaults["kexalgorithms"] == ("mlkem768x25519-sha256", "curve25519-sha256")
    # a query the binary refuses falls back to the release table
    assert found.supported["macs"] == openssh.table_supported("macs", (9, 9))
    assert ["ssh", "-Q", "key-sig"] in calls


def test_server_only_install_is_read_from_sshd() -> None:
    def run(argv: list[str]) -> CommandResult:
        if argv[0] == "ssh":
            return CommandResult(tuple(argv), 127, "", "ssh: command not found\n")
        # OpenSSH 8.4's sshd has no -V: its usage text still names the release
        usage = "unknown option -- V\nOpenSSH_8.4p1, OpenSSL 1.1.1n\nusage: sshd [-46DdeiqTt]\n"
        return CommandResult(tuple(argv), 1, "", usage)

    found = openssh.probe(run, "on ssh:root@db-1")
    assert found.version == (8, 4) and not found.assumed


def test_unreadable_version_assumes_the_oldest_and_says_so() -> None:
    def run(argv: list[str]) -> CommandResult:
        return CommandResult(tuple(argv), 127, "", "ssh: command not found\n")

    found = openssh.probe(run, "on ssh:root@appliance")
    assert found.assumed and found.version == openssh.OLDEST
    assert "could not be read (ssh: command not found)" in found.source
    assert "assuming OpenSSH 7.4" in found.source
    assert not any("sntrup" in n for n in found.supported["kexalgorithms"])
    bad = openssh.for_version("latest")
    assert bad.assumed and "'latest' is not a release" in bad.source


def test_directory_target_uses_this_machines_openssh_and_says_so(tmp_path: Path) -> None:
    target = target_with(tmp_path, "PermitRootLogin no\n")
    found = openssh.for_target(target)
    here = openssh.this_machine()
    assert found.version == here.version and found.supported == here.supported
    assert f"{target.describe()} is a directory" in found.source
    assert "openssh_version" in found.source
    plan = Plan(remediator="sshd-hardening", rule_id="T", title="t")
    candidate = openssh.for_target(OverlayView(OverlayView(target, plan), plan))
    assert candidate.source == found.source  # a plan's candidate is read as its target
    pinned = openssh.for_target(target, "8.4")
    assert pinned.version == (8, 4) and "parameter openssh_version" in pinned.source


def test_ssh_target_is_probed_over_its_session(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    target_with(root, "PermitRootLogin no\n")
    with running_server(tmp_path / "server") as server, make_target(server, root) as target:
        openssh.clear_cache()
        found = openssh.for_target(target)
        assert found.source.endswith(f"on {target.describe()}")
        assert found.version == openssh.this_machine().version  # the test server runs here
        assert server.connection_count() >= 1
        finding = next(f for f in PLUGIN.detect(target) if f.rule_id == "SSHD-WEAK-KEX")
        assert finding.extra["openssh_source"] == found.source
    openssh.clear_cache()


# ------------------------------------------------------------ per level


def test_unset_kex_is_judged_by_the_releases_defaults(tmp_path: Path) -> None:
    target = target_with(tmp_path, "PermitRootLogin no\n")
    kex = by_rule(target, SshdParams(openssh_version="9.2"))["SSHD-WEAK-KEX"]
    assert "ecdh-sha2-nistp256" in kex.title and "by default" in kex.title  # type: ignore[attr-defined]
    plan = PLUGIN.plan(kex, target, SshdParams(openssh_version="9.2"))  # type: ignore[arg-type]
    written = next(ln for ln in plan.diff.splitlines() if ln.startswith("+KexAlgorithms"))
    assert "ecdh" not in written and "sntrup761x25519-sha512@openssh.com" in written
    assert any("OpenSSH 9.2 (parameter openssh_version)" in w for w in plan.risk.warnings)
    # 9.2's default ciphers are all AEAD or CTR: nothing to write
    assert "SSHD-WEAK-CIPHERS" not in by_rule(target, SshdParams(openssh_version="9.2"))


def test_old_release_gets_what_it_supports_and_the_gap_as_a_manual_step(tmp_path: Path) -> None:
    target = target_with(tmp_path, "PermitRootLogin no\n")
    params = SshdParams(level="maximum", openssh_version="8.4")
    found = by_rule(target, params)
    assert "SSHD-RSA-KEY-SIZE" not in found  # RequiredRSASize is 9.1+
    plan = PLUGIN.plan(found["SSHD-WEAK-KEX"], target, params)  # type: ignore[arg-type]
    assert "+KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org" in plan.diff
    assert any("post-quantum" in m and "8.5" in m for m in plan.risk.manual_steps)
    pub = PLUGIN.plan(found["SSHD-WEAK-PUBKEY-ALGORITHMS"], target, params)  # type: ignore[arg-type]
    assert "+PubkeyAcceptedKeyTypes ssh-ed25519" in pub.diff  # 8.4's keyword
    apply(target, plan)
    assert "SSHD-WEAK-KEX" not in by_rule(target, params)  # the best it can is verified
    # a finding about a setting this release lacks (from a 9.x scan) changes nothing
    newer = by_rule(target, SshdParams(level="maximum", openssh_version="9.2"))
    rsa = PLUGIN.plan(newer["SSHD-RSA-KEY-SIZE"], target, params)  # type: ignore[arg-type]
    assert rsa.changes == [] and "has no RequiredRSASize" in rsa.risk.warnings[0]


def test_levels_differ_on_what_only_warns(tmp_path: Path) -> None:
    line = "MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-256,hmac-sha1\n"
    target = target_with(tmp_path, line)
    strict = by_rule(target, SshdParams(level="strict", openssh_version="9.2"))["SSHD-WEAK-MACS"]
    plan = PLUGIN.plan(strict, target, SshdParams(openssh_version="9.2"))  # type: ignore[arg-type]
    assert "+MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-256\n" in plan.diff
    maximum = SshdParams(level="maximum", openssh_version="9.2")
    plan = PLUGIN.plan(by_rule(target, maximum)["SSHD-WEAK-MACS"], target, maximum)  # type: ignore[arg-type]
    assert "+MACs hmac-sha2-256-etm@openssh.com\n" in plan.diff


def test_written_lists_name_only_what_the_release_supports() -> None:
    for version in ((7, 4), (8, 4), (9, 2), (9, 9)):
        ssh = from_version(version, "t")
        for kind in algos.KINDS:
            for level in ("baseline", "strict", "maximum"):
                written = algos.fixed_list(kind, None, level, ssh).split(",")  # type: ignore[arg-type]
                assert written and set(written) <= set(ssh.supported[kind]), (version, kind)
                assert not [n for n in written if algos.is_broken(kind, n)]


# ------------------------------------------------------------ legacy clients


def test_legacy_clients_need_a_reason() -> None:
    with pytest.raises(ValidationError, match="ssh_clients_reason"):
        SshdParams(ssh_clients="legacy")
    with pytest.raises(ValidationError, match="openssh_version"):
        SshdParams(openssh_version="latest")


def test_legacy_clients_keep_their_algorithms_only_at_baseline(tmp_path: Path) -> None:
    target = target_with(tmp_path, "KexAlgorithms ecdh-sha2-nistp256,diffie-hellman-group1-sha1\n")
    legacy = {"ssh_clients": "legacy", "ssh_clients_reason": "SCADA gateway, ticket OT-7"}
    baseline = SshdParams(level="baseline", openssh_version="9.2", **legacy)  # type: ignore[arg-type]
    kex = by_rule(target, baseline)["SSHD-WEAK-KEX"]
    plan = PLUGIN.plan(kex, target, baseline)  # type: ignore[arg-type]
    assert "+KexAlgorithms ecdh-sha2-nistp256\n" in plan.diff  # group1-sha1 goes anyway
    assert any("SCADA gateway" in w and "ecdh-sha2-nistp256" in w for w in plan.risk.warnings)
    strict = SshdParams(level="strict", openssh_version="9.2", **legacy)  # type: ignore[arg-type]
    plan = PLUGIN.plan(by_rule(target, strict)["SSHD-WEAK-KEX"], target, strict)  # type: ignore[arg-type]
    assert "ecdh" not in plan.diff.split("+KexAlgorithms")[1]
    assert any("only level baseline keeps them" in w for w in plan.risk.warnings)


# ------------------------------------------------------------ host keys


def rsa_pub(bits: int) -> str:
    def s(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b

    n = (1 << (bits - 1)) | 1
    blob = s(b"ssh-rsa") + s(b"\x01\x00\x01") + s(n.to_bytes(bits // 8 + 1, "big"))
    return f"ssh-rsa {base64.b64encode(blob).decode()} root@old\n"


def keygen_pub(tmp_path: Path, kind: str) -> str:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        pytest.skip("ssh-keygen is not installed")
    key = tmp_path / f"k-{kind}"
    subprocess.run([keygen, "-q", "-t", kind, "-N", "", "-f", str(key)], check=True, timeout=30)
    return (tmp_path / f"k-{kind}.pub").read_text()


def test_weak_host_keys_are_manual_with_the_regeneration_command(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    target = target_with(
        tmp_path / "host",
        "HostKey /etc/ssh/ssh_host_rsa_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\n"
        "HostKey /etc/ssh/ssh_host_ed25519_key\n",
        {
            "etc/ssh/ssh_host_rsa_key": "private\n",
            "etc/ssh/ssh_host_rsa_key.pub": rsa_pub(2048),
            "etc/ssh/ssh_host_ecdsa_key": "private\n",
            "etc/ssh/ssh_host_ecdsa_key.pub": keygen_pub(keys, "ecdsa"),
            "etc/ssh/ssh_host_ed25519_key": "private\n",
            "etc/ssh/ssh_host_ed25519_key.pub": keygen_pub(keys, "ed25519"),
        },
    )

    def weak(level: str) -> dict[str, str]:
        params = SshdParams(level=level, openssh_version="9.2")  # type: ignore[arg-type]
        return {
            f.location.path: f.title
            for f in PLUGIN.detect(target, params)
            if f.rule_id == keyfiles.HOST_KEY
        }

    assert weak("baseline") == {}
    assert set(weak("strict")) == {"etc/ssh/ssh_host_ecdsa_key"}
    assert "256-bit ecdsa-sha2-nistp256" in weak("strict")["etc/ssh/ssh_host_ecdsa_key"]
    assert set(weak("maximum")) == {"etc/ssh/ssh_host_ecdsa_key", "etc/ssh/ssh_host_rsa_key"}
    params = SshdParams(level="maximum", openssh_version="9.2")
    plans = {
        f.location.path: PLUGIN.plan(f, target, params)
        for f in PLUGIN.detect(target, params)
        if f.rule_id == keyfiles.HOST_KEY
    }
    rsa = plans["etc/ssh/ssh_host_rsa_key"]
    assert rsa.changes == [] and "ssh-keygen -q -t rsa -b 4096" in (rsa.needs_manual or "")
    ecdsa = plans["etc/ssh/ssh_host_ecdsa_key"].needs_manual or ""
    assert "etc/ssh/sshd_config line 2" in ecdsa and "known_hosts" in ecdsa


def test_default_host_keys_are_judged_when_no_hostkey_line(tmp_path: Path) -> None:
    target = target_with(
        tmp_path,
        "PermitRootLogin no\n",
        {"etc/ssh/ssh_host_rsa_key.pub": rsa_pub(1024), "etc/ssh/ssh_host_rsa_key": "x\n"},
    )
    found = PLUGIN.detect(target, SshdParams(level="baseline"))
    [key] = [f for f in found if f.rule_id == keyfiles.HOST_KEY]
    assert "1024-bit ssh-rsa" in key.title and key.location.path == "etc/ssh/ssh_host_rsa_key"
    assert "default HostKey" in (key.evidence or "")


# ------------------------------------------------------------ DH moduli

MODULI = (
    "#    $OpenBSD: moduli,v 1.33 2023/03/16 $\n"
    "# Time Type Tests Tries Size Generator Modulus\n"
    "20230316000000 2 6 100 2047 2 C5A3\n"
    "20230316000001 2 6 100 2047 5 C5A5\n"
    "20230316000002 2 6 100 3071 2 E1B7\n"
    "20230316000003 2 6 100 4095 5 F00D\n"
)


def test_small_dh_groups_are_removed_and_the_edit_is_reversible(tmp_path: Path) -> None:
    target = target_with(tmp_path, "PermitRootLogin no\n", {keyfiles.MODULI_PATH: MODULI})
    assert keyfiles.MODULI not in by_rule(target, SshdParams(level="baseline"))
    finding = by_rule(target, SshdParams())[keyfiles.MODULI]
    assert "2 Diffie-Hellman groups under 3072 bits" in finding.title  # type: ignore[attr-defined]
    plan = PLUGIN.plan(finding, target, SshdParams())  # type: ignore[arg-type]
    [change] = plan.changes
    assert change.path == keyfiles.MODULI_PATH and change.before_sha256  # type: ignore[union-attr]
    apply(target, plan)
    text = (tmp_path / keyfiles.MODULI_PATH).read_text()
    assert " 2047 " not in text and " 3071 " in text and text.startswith("#    $OpenBSD")
    assert keyfiles.MODULI not in by_rule(target, SshdParams())
    assert "-20230316000000 2 6 100 2047 2 C5A3" in plan.diff  # the diff restores it


def test_moduli_with_no_large_group_is_manual(tmp_path: Path) -> None:
    small = "".join(ln for ln in MODULI.splitlines(keepends=True) if " 2047 " in ln)
    target = target_with(tmp_path, "PermitRootLogin no\n", {keyfiles.MODULI_PATH: small})
    finding = by_rule(target, SshdParams())[keyfiles.MODULI]
    plan = PLUGIN.plan(finding, target, SshdParams())  # type: ignore[arg-type]
    assert plan.changes == [] and "ssh-keygen -M generate -O bits=3072" in (plan.needs_manual or "")
