"""Which configuration files each domain takes from a repository, and the
bad input it reports per file while the rest of the scan goes on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jupiter.plugins.nftables.fix import NftablesFirewall
from jupiter.plugins.postgres.fix import PgHba, PostgresqlConf
from jupiter.plugins.sshd.fix import SshdHardening
from jupiter.targets.local import LocalTarget
from jupiter.targets.overlay import OverlayView
from tests.conftest import FIXTURES
from tests.plugins import configs_repos as repos

SSHD = SshdHardening()
GOOD = "PermitRootLogin yes\nUsePAM yes\nSubsystem sftp /usr/lib/openssh/sftp-server\n"


def _files(target: LocalTarget, plugin: object) -> dict[str, tuple[str, str, str]]:
    taken = plugin.config_files(target)  # type: ignore[attr-defined]
    return {t.path: (t.status, t.role, t.evidence) for t in taken}


def test_host_shaped_target_keeps_todays_behaviour(tmp_path: Path) -> None:
    host = tmp_path / "host"
    shutil.copytree(FIXTURES / "sshd/messy", host)
    # a repository-looking file beside a host tree is not taken: the host wins
    repos.write(host, {"lab/sshd_config": GOOD})
    target = LocalTarget(host)
    findings, _ = SSHD.survey(target)
    assert findings and {f.location.path for f in findings} <= {
        p for p in target.walk() if p.startswith("etc/")
    }
    assert all("config_file" not in f.extra for f in findings)
    assert SSHD.config_files(target) == []


def test_readme_fragment_and_binary_named_like_configs_are_refused(tmp_path: Path) -> None:
    repo = repos.write(
        tmp_path / "r",
        {
            "docs/sshd_config": repos.README_FRAGMENT,
            "bin/sshd_config": b"\x7fELF\x00\x00binary",
            "ok/sshd_config": GOOD,
            "pg/postgresql.conf": "This is not a config file\n",
            "fw/rules.nft": b"\x00\x01\x02",
        },
    )
    target = LocalTarget(repo)
    files = _files(target, SSHD)
    assert files["docs/sshd_config"][0] == "refused"
    assert "does not read as sshd configuration" in files["docs/sshd_config"][2]
    assert files["bin/sshd_config"][0] == "refused" and "binary" in files["bin/sshd_config"][2]
    assert files["ok/sshd_config"][0] == "taken"
    findings, problems = SSHD.survey(target)
    assert {f.location.path for f in findings} == {"ok/sshd_config"}  # the run went on
    assert len([p for p in problems if "sshd_config" in p]) == 2
    pg = _files(target, PostgresqlConf())
    assert pg["pg/postgresql.conf"][0] == "refused"
    found, problems = PostgresqlConf().survey(target)
    assert found == [] and any("pg/postgresql.conf" in p for p in problems)
    fw = _files(target, NftablesFirewall())
    assert fw["fw/rules.nft"][0] == "refused"


def test_sshd_include_loop_and_outside_include_are_reported_not_followed(tmp_path: Path) -> None:
    repo = repos.write(
        tmp_path / "r",
        {
            "ssh/sshd_config": "Include sshd_config.d/*.conf\nInclude /etc/passwd\n" + GOOD,
            "ssh/sshd_config.d/a.conf": "Include sshd_config.d/b.conf\nX11Forwarding yes\n",
            "ssh/sshd_config.d/b.conf": "Include sshd_config.d/a.conf\n",
        },
    )
    findings, problems = SSHD.survey(LocalTarget(repo))
    joined = " ".join(problems)
    assert "loops back" in joined
    assert "/etc/passwd is an absolute host path outside the repository" in joined
    x11 = [f for f in findings if f.rule_id == "SSHD-X11-FORWARDING"]
    assert [f.location.path for f in x11] == ["ssh/sshd_config.d/a.conf"]
    assert all(not (f.location.path or "").startswith("/") for f in findings)


def test_content_decides_for_unusual_names_and_mixed_files_are_ambiguous(tmp_path: Path) -> None:
    repo = repos.write(
        tmp_path / "r",
        {
            "deploy/ssh_server.conf": GOOD + "MaxAuthTries 3\n",
            "deploy/ssh_mixed.conf": GOOD + "Host *\n  IdentityFile ~/.ssh/id\n",
            "deploy/ssh_client.conf": "Host *\n  ForwardAgent no\n",
        },
    )
    target = LocalTarget(repo)
    files = _files(target, SSHD)
    assert files["deploy/ssh_server.conf"][0] == "taken"
    assert files["deploy/ssh_server.conf"][2].startswith("content:")
    assert files["deploy/ssh_mixed.conf"][0] == "ambiguous"
    assert "deploy/ssh_client.conf" not in files
    findings, _ = SSHD.survey(target)
    assert {f.location.path for f in findings} == {"deploy/ssh_server.conf"}


def test_dropin_alone_is_judged_on_what_it_sets(tmp_path: Path) -> None:
    repo = repos.write(
        tmp_path / "r", {"sshd_config.d/50-site.conf": "PermitRootLogin yes\nUsePAM yes\n"}
    )
    target = LocalTarget(repo)
    findings, _ = SSHD.survey(target)
    assert [f.rule_id for f in findings] == ["SSHD-ROOT-LOGIN"]
    assert _files(target, SSHD)["sshd_config.d/50-site.conf"][1] == "fragment"
    plan = SSHD.plan(findings[0], target, SSHD.default_params())
    assert "+PermitRootLogin no" in plan.diff
    if shutil.which("sshd") or Path("/usr/sbin/sshd").exists():
        [check] = SSHD.validate(plan, OverlayView(target, plan))
        assert check.status == "passed", check.detail


def test_postgres_include_loop_is_reported_per_cluster_and_the_other_is_checked(
    tmp_path: Path,
) -> None:
    repo = repos.write(
        tmp_path / "r",
        {
            "a/postgresql.conf": "include 'loop.conf'\nssl = off\n",
            "a/loop.conf": "include 'postgresql.conf'\n",
            "b/postgresql.conf": "ssl = off\nmax_connections = 10\n",
            "b/pg_hba.conf": "host all all 0.0.0.0/0 trust\n",
            "c/pg_hba.conf": "local all all trust\n",
        },
    )
    target = LocalTarget(repo)
    findings, problems = PostgresqlConf().survey(target)
    assert {f.location.path for f in findings} == {"b/postgresql.conf"}
    assert any("loops back" in p for p in problems)
    files = _files(target, PostgresqlConf())
    assert files["c/pg_hba.conf"][0] == "ambiguous"
    hba, _ = PgHba().survey(target)
    assert {f.location.path for f in hba} == {"b/pg_hba.conf"}
    assert all(f.extra["config_file"]["path"] == "b/pg_hba.conf" for f in hba)


def test_nftables_repo_ruleset_with_includes_and_outside_include(tmp_path: Path) -> None:
    repo = repos.write(
        tmp_path / "r",
        {
            "net/nftables.conf": 'flush ruleset\ninclude "rules/*.nft"\n'
            'include "/etc/nftables.d/site.nft"\n',
            "net/rules/input.nft": "table inet filter {\n  chain input {\n"
            "    type filter hook input priority 0; policy accept;\n  }\n}\n",
        },
    )
    target = LocalTarget(repo)
    fw = NftablesFirewall()
    findings, problems = fw.survey(target)
    assert [(f.rule_id, f.location.path) for f in findings] == [
        ("FW-INPUT-POLICY-ACCEPT", "net/rules/input.nft")
    ]
    assert any("absolute host path outside the repository" in p for p in problems)
    files = _files(target, fw)
    assert files["net/rules/input.nft"][1] == "include"
    plan = fw.plan(findings[0], target, fw.default_params())
    assert [c.path for c in plan.changes] == ["net/rules/input.nft"]  # type: ignore[union-attr]


@pytest.mark.parametrize("template", ["{% if x %}\nPermitRootLogin yes\n", "{{ broken \n"])
def test_template_that_does_not_render_is_reported_not_edited(
    tmp_path: Path, template: str
) -> None:
    repo = repos.write(tmp_path / "r", {"roles/a/templates/sshd_config.j2": template})
    target = LocalTarget(repo)
    findings, problems = SSHD.survey(target)
    assert findings == []
    assert any("does not render" in p for p in problems)


def test_postgres_image_copy_taken_and_inline_edit_needs_manual(tmp_path: Path) -> None:
    repo = repos.write(
        tmp_path / "r",
        {
            "db/Dockerfile": "FROM debian:12.8\n"
            "RUN apt-get update && apt-get install -y postgresql-15\n"
            "COPY server.conf /etc/postgresql/15/main/postgresql.conf\n"
            "RUN echo \"listen_addresses = '*'\" >> /etc/postgresql/15/main/postgresql.conf\n",
            "db/server.conf": "ssl = on\nlog_connections = off\n",
        },
    )
    target = LocalTarget(repo)
    conf = PostgresqlConf()
    files = _files(target, conf)
    assert files["db/server.conf"][2].startswith(
        "db/Dockerfile line 3 copies it to /etc/postgresql/15/main/postgresql.conf in an "
        "image that installs postgresql-15"
    )
    findings, _ = conf.survey(target)
    by_rule = {f.rule_id: f for f in findings}
    assert by_rule["PG-LOG-CONNECTIONS"].location.path == "db/server.conf"
    inline = by_rule["PG-INLINE-CONFIG"]
    assert (inline.location.path, inline.location.start_line) == ("db/Dockerfile", 4)
    plan = conf.plan(inline, target, conf.default_params())
    assert plan.changes == [] and (plan.needs_manual or "").startswith("db/Dockerfile line 4")


def test_host_tree_inside_a_repository_resolves_absolute_includes_in_that_tree(
    tmp_path: Path,
) -> None:
    repo = repos.write(
        tmp_path / "r",
        {
            "image/rootfs/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\n" + GOOD,
            "image/rootfs/etc/ssh/sshd_config.d/50-x.conf": "X11Forwarding yes\n",
            "image/rootfs/etc/ssh/sshd_config.d/.off.conf": "X11Forwarding yes\n",
        },
    )
    target = LocalTarget(repo)
    files = _files(target, SSHD)
    assert files["image/rootfs/etc/ssh/sshd_config.d/50-x.conf"][1] == "include"
    assert "image/rootfs/etc/ssh/sshd_config.d/.off.conf" not in files
    findings, problems = SSHD.survey(target)
    assert not [p for p in problems if "not followed" in p]
    [x11] = [f for f in findings if f.rule_id == "SSHD-X11-FORWARDING"]
    assert x11.location.path == "image/rootfs/etc/ssh/sshd_config.d/50-x.conf"


def test_ansible_filters_and_list_defaults_render_for_the_checker(tmp_path: Path) -> None:
    repo = repos.write(
        tmp_path / "r",
        {
            "roles/s/templates/sshd_config.j2": "X11Forwarding "
            "{{ 'yes' if x11 | bool else 'no' }}\nCiphers {{ ciphers | join(',') }}\n"
            "PermitRootLogin no\nUsePAM yes\n",
            "roles/s/defaults/main.yml": "x11: yes\nciphers:\n  - aes256-ctr\n  - 3des-cbc\n",
        },
    )
    target = LocalTarget(repo)
    assert _files(target, SSHD)["roles/s/templates/sshd_config.j2"][0] == "taken"
    findings, problems = SSHD.survey(target)
    assert problems == []
    [weak] = [f for f in findings if f.rule_id == "SSHD-WEAK-CIPHERS"]
    plan = SSHD.plan(weak, target, SSHD.default_params())
    assert "Jinja variable ciphers" in (plan.needs_manual or "")
    assert "roles/s/defaults/main.yml line 2" in (plan.needs_manual or "")
    [x11] = [f for f in findings if f.rule_id == "SSHD-X11-FORWARDING"]
    plan = SSHD.plan(x11, target, SSHD.default_params())
    assert plan.changes == [] and "Jinja expression {{ 'yes' if x11" in (plan.needs_manual or "")
    from jupiter.plugins.configs import render_template

    text = (repo / "roles/s/templates/sshd_config.j2").read_text()
    rendered = render_template(target, "roles/s/templates/sshd_config.j2", text)
    assert "X11Forwarding yes" in rendered and "Ciphers aes256-ctr,3des-cbc" in rendered


def test_nftables_include_loop_is_reported(tmp_path: Path) -> None:
    repo = repos.write(
        tmp_path / "r",
        {
            "fw/a.nft": 'include "b.nft"\ntable inet t {\n}\n',
            "fw/b.nft": 'include "a.nft"\n',
        },
    )
    findings, problems = NftablesFirewall().survey(LocalTarget(repo))
    assert findings == []
    assert any("loops back" in p and p.startswith("fw/a.nft line 1") for p in problems)
    assert any("loops back" in p and p.startswith("fw/b.nft line 1") for p in problems)
