"""``nftables-firewall``: replace the boot-time nftables ruleset with a
default-drop one that opens only the services the asset declares.

The fix is a complete ruleset rendered from ``templates/nftables.conf.j2``
(:func:`render_ruleset`, also used by ``jupiter generate firewall``): it
flushes whatever was there, so the plan says so and marks itself disruptive.
In a repository the ruleset file the finding names is the one replaced
(:mod:`jupiter.plugins.nftables.sources`).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jupiter.errors import InputError
from jupiter.models import Category, FindingRecord
from jupiter.netparams import network, port_list
from jupiter.plans import Plan, Risk, WriteFile, sha256_bytes, unified_diff
from jupiter.plugins.base import Remediator, ValidationResult
from jupiter.plugins.configs import TakenFile
from jupiter.plugins.nftables import sources
from jupiter.plugins.nftables.detect import (
    RULESET_PATH,
    DeclaredServices,
    check_firewall,
    read_ruleset,
    scan_firewall,
)
from jupiter.scratch import scratch
from jupiter.targets.base import TargetView
from jupiter.templating import config_environment

AssetType = Literal["web_server", "database", "bastion", "generic"]
# Ports an asset type serves to anyone. A database is reached from known
# application hosts, never from the world, so it opens nothing by default.
ASSET_TYPE_PORTS: dict[str, tuple[int, ...]] = {
    "web_server": (80, 443),
    "database": (),
    "bastion": (),
    "generic": (),
}
NEW_FILE_MODE = 0o755  # Debian ships /etc/nftables.conf executable (#!/usr/sbin/nft -f)
_NFT_TIMEOUT = 30.0
_SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


class FirewallParams(BaseModel):
    """What the asset serves. ``admin_ports`` are open to any source unless
    ``admin_cidr`` is set; ``rate``/``burst`` bound new connections per
    source per minute."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asset_type: AssetType = "generic"
    allow_ports: list[int] = Field(default_factory=list)
    allow_udp_ports: list[int] = Field(default_factory=list)
    admin_ports: list[int] = Field(default_factory=lambda: [22])
    admin_cidr: str | None = None
    rate: int = Field(default=60, ge=1, le=100_000)
    burst: int = Field(default=20, ge=1, le=100_000)

    _check_ports = field_validator("allow_ports", "allow_udp_ports", "admin_ports", mode="before")(
        port_list
    )
    _check_cidr = field_validator("admin_cidr")(network)

    def public_tcp(self) -> list[int]:
        ports = {*ASSET_TYPE_PORTS[self.asset_type], *self.allow_ports}
        if self.admin_cidr is None:
            ports.update(self.admin_ports)
        return sorted(ports)

    def admin_tcp(self) -> list[int]:
        if self.admin_cidr is None:
            return []
        return sorted(set(self.admin_ports) - set(self.public_tcp()))

    def declared(self) -> DeclaredServices:
        return DeclaredServices(frozenset(self.public_tcp()), frozenset(self.allow_udp_ports))


def parse_firewall_params(raw: Mapping[str, object] | BaseModel | None) -> FirewallParams:
    """Validate parameters; InputError names the field and the bad value."""
    if isinstance(raw, FirewallParams):
        return raw
    data = raw.model_dump() if isinstance(raw, BaseModel) else dict(raw or {})
    try:
        return FirewallParams.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "parameters"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise InputError(f"nftables-firewall parameter {where}: {msg}") from None


def render_ruleset(params: FirewallParams | Mapping[str, object]) -> str:
    """The complete ``/etc/nftables.conf`` for ``params`` (a model or a raw mapping)."""
    p = parse_firewall_params(params)
    family = None
    if p.admin_cidr is not None:
        family = "ip" if ipaddress.ip_network(p.admin_cidr).version == 4 else "ip6"
    return (
        config_environment()
        .get_template("nftables.conf.j2")
        .render(
            asset_type=p.asset_type,
            declared_header=p.declared().header(),
            public_tcp=p.public_tcp(),
            public_udp=p.allow_udp_ports,
            admin_tcp=p.admin_tcp(),
            admin_cidr=p.admin_cidr,
            admin_family=family,
            rate=p.rate,
            burst=p.burst,
        )
    )


def _crlf_warning(risk: Risk, before: str | None, path: str = RULESET_PATH) -> Risk:
    if before is None or "\r\n" not in before:
        return risk
    note = (
        f"{path} has CRLF line endings, which nft cannot read (it never loaded); the "
        "new ruleset is written with LF line endings only"
    )
    return risk.model_copy(update={"warnings": [*risk.warnings, note]})


def _risk(p: FirewallParams, existing_rules: int | None, path: str = RULESET_PATH) -> Risk:
    warnings = [
        "flush ruleset also removes rules other software added at run time (Docker, libvirt, "
        "fail2ban); restart those services after the reload.",
        f"New connections above {p.rate}/minute (burst {p.burst}) from one source address are "
        "dropped; clients behind one NAT, proxy or CDN address share that budget, so raise "
        "rate for such traffic.",
    ]
    if existing_rules:
        warnings.insert(
            0,
            f"Replaces the whole ruleset: the {existing_rules} rules of the "
            f"current {path} are not carried over.",
        )
    if p.admin_cidr:
        warnings.append(
            f"Admin ports {', '.join(map(str, p.admin_ports))} will accept connections only "
            f"from {p.admin_cidr}; if you administer the host from elsewhere, reloading "
            "nftables locks you out."
        )
    elif p.admin_ports:
        warnings.append(
            f"Admin ports {', '.join(map(str, p.admin_ports))} stay open to any source; set "
            "admin_cidr to restrict them."
        )
    return Risk(
        change_kind="config",
        services_to_reload=["nftables"],
        disruption=True,
        warnings=warnings,
        manual_steps=[
            "Confirm you have console (out-of-band) access to the host before nftables is "
            "reloaded, in case the new ruleset blocks your session.",
            "Make sure the ruleset is loaded at boot: systemctl enable nftables.",
        ],
    )


class NftablesFirewall(Remediator[FirewallParams]):
    """Default-drop nftables ruleset opening only the declared services.

    ``params`` given to the constructor are the asset's declaration used by
    :meth:`detect`; without them detect uses the declaration recorded in a
    Jupiter-generated ruleset, else TCP 22 only.
    """

    name: ClassVar[str] = "nftables-firewall"
    summary: ClassVar[str] = (
        "Replace the boot-time nftables ruleset with a default-drop one opening only "
        "declared services"
    )
    categories = frozenset({Category.CONFIG_FIREWALL})
    rule_ids = frozenset({"FW-NO-RULESET", "FW-INPUT-POLICY-ACCEPT", "FW-UNDECLARED-OPEN-PORT"})
    params_model: ClassVar[type[BaseModel]] = FirewallParams

    def __init__(self, params: FirewallParams | None = None) -> None:
        self._params = params

    def parse_params(self, raw: dict[str, object] | None) -> FirewallParams:
        return parse_firewall_params(raw)

    def detect(self, view: TargetView, params: FirewallParams | None = None) -> list[FindingRecord]:
        """FW-* findings; ``params`` (or the constructor's) declare the asset's services."""
        return self.survey(view, params)[0]

    def survey(
        self, view: TargetView, params: FirewallParams | None = None
    ) -> tuple[list[FindingRecord], list[str]]:
        chosen = parse_firewall_params(params) if params is not None else self._params
        found, problems, _ = scan_firewall(view, chosen.declared() if chosen else None)
        return found, problems

    def config_files(
        self, view: TargetView, params: FirewallParams | None = None
    ) -> list[TakenFile]:
        return sources.survey(view).files

    def plan(self, finding: FindingRecord, view: TargetView, params: FirewallParams) -> Plan:
        p = parse_firewall_params(params)
        path = finding.location.path or RULESET_PATH
        try:
            before_bytes: bytes | None = view.read_bytes(path)
        except FileNotFoundError:
            before_bytes = None
        before = before_bytes.decode("utf-8", errors="replace") if before_bytes else None
        # The one editor that does not keep CRLF: nft reads "\r" as junk, so a
        # CRLF ruleset never loaded; the whole file is replaced with LF only.
        content = render_ruleset(p)
        base = Plan(
            remediator=self.name,
            rule_id=finding.rule_id,
            severity=finding.severity,
            title=f"Default-drop nftables ruleset for a {p.asset_type} asset",
        )
        still_open = [
            f for f in check_firewall(view, p.declared(), path) if f.rule_id == finding.rule_id
        ]
        if before_bytes is not None and (before == content or not still_open):
            return base
        existing_rules = None
        if before_bytes is not None:
            try:
                loaded = read_ruleset(view, path)
                if loaded is not None:
                    existing_rules = sum(
                        len(c.rules) for t in loaded[1].tables for c in t.chains.values()
                    )
            except InputError:
                existing_rules = None
        return base.model_copy(
            update={
                "changes": [
                    WriteFile(
                        path=path,
                        content=content,
                        before_sha256=sha256_bytes(before_bytes)
                        if before_bytes is not None
                        else None,
                        mode=None if before_bytes is not None else NEW_FILE_MODE,
                    )
                ],
                "risk": _crlf_warning(_risk(p, existing_rules, path), before, path),
                "diff": unified_diff(path, before, content),
                "related_findings": [f.rule_id for f in still_open if f is not finding],
            }
        )

    def validate(self, plan: Plan, candidate: TargetView) -> list[ValidationResult]:
        """``nft -c -f`` on the candidate ruleset (parses and checks it in the
        kernel's netlink layer without applying it); in a repository, on
        each ruleset file the plan writes."""
        written = [c.path for c in plan.changes if isinstance(c, WriteFile)]
        results = []
        for path in written or [RULESET_PATH]:
            try:
                data = candidate.read_bytes(path)
            except FileNotFoundError:
                results.append(ValidationResult("nft -c", "skipped", f"{path} is absent"))
                continue
            results.append(check_with_nft(data, path))
        return results


def check_with_nft(data: bytes, shown: str = RULESET_PATH) -> ValidationResult:
    """Run ``nft -c -f`` on ``data``. Without CAP_NET_ADMIN nft cannot even
    check, so a non-root run retries inside a new user+network namespace
    (``unshare -rn``), and reports ``skipped`` when that is not allowed."""
    path_env = os.environ.get("PATH", "") + os.pathsep + _SBIN_PATH
    nft = shutil.which("nft", path=path_env)
    if nft is None:
        return ValidationResult("nft -c", "skipped", "nft is not installed on this machine")
    with scratch("nft") as tmp:
        path = Path(tmp) / "nftables.conf"
        path.write_bytes(data)
        attempts = [[nft, "-c", "-f", str(path)]]
        unshare = shutil.which("unshare", path=path_env)
        if os.geteuid() != 0 and unshare is not None:
            attempts.append([unshare, "-rn", nft, "-c", "-f", str(path)])
        detail = ""
        for argv in attempts:
            try:
                proc = subprocess.run(
                    argv, capture_output=True, text=True, timeout=_NFT_TIMEOUT, check=False
                )
            except subprocess.TimeoutExpired:
                return ValidationResult(
                    "nft -c", "failed", f"nft -c timed out after {_NFT_TIMEOUT}s"
                )
            out = (proc.stderr + proc.stdout).replace(str(path), shown).strip()
            if proc.returncode == 0:
                return ValidationResult("nft -c", "passed", out)
            if "Operation not permitted" not in out or "syntax error" in out:
                return ValidationResult("nft -c", "failed", out)
            detail = out
        first = detail.splitlines()[0] if detail else "no output"
        return ValidationResult(
            "nft -c",
            "skipped",
            f"nft -c needs CAP_NET_ADMIN (run as root or allow user namespaces): {first}",
        )


__all__ = [
    "ASSET_TYPE_PORTS",
    "FirewallParams",
    "NftablesFirewall",
    "check_with_nft",
    "parse_firewall_params",
    "render_ruleset",
]
