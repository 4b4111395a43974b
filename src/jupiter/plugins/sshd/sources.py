"""Where sshd configurations are in a target (see :mod:`jupiter.plugins.configs`).

A target with ``etc/ssh/sshd_config`` mirrors a host: that file (and what it
Includes) is the one configuration, as always. In any other target (a
repository) a file is taken when:

* it is named ``sshd_config`` (or ``sshd_config.j2``, an Ansible template);
* it is named ``*.sshd.conf`` or sits in a ``sshd_config.d/`` folder (a
  drop-in: unless some taken ``sshd_config`` Includes it, only the settings
  it sets are judged);
* a Dockerfile copies it to ``/etc/ssh/sshd_config`` (or into
  ``/etc/ssh/sshd_config.d/``);
* its name mentions ssh and its content is clearly sshd's (several
  server-only keywords, nothing an ssh *client* config would hold).

Each taken file has to read as sshd configuration: a file named like one
whose lines are mostly no sshd keyword (a README fragment) or that is no
text is refused; one that mixes client and server keywords is ambiguous.
Both are reported and never edited.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from jupiter.errors import InputError
from jupiter.plugins import configs
from jupiter.plugins.configs import TakenFile
from jupiter.plugins.sshd.parse import MAIN_CONFIG, canonical, split_lines, tokenize
from jupiter.targets.base import TargetView

DOMAIN = "sshd"
INLINE_RULE = "SSHD-INLINE-CONFIG"
IMAGE_PATHS = re.compile(r"/etc/ssh/sshd_config(?:\.d/[^\s'\";&|]+)?")


def _words(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in text.split())


# Every keyword OpenSSH's sshd (9.x, Debian patches, and deprecated ones it
# still accepts with a warning) knows, lower case.
KEYWORDS = _words(
    """
Port AddressFamily ListenAddress HostKey HostCertificate HostKeyAgent HostKeyAlgorithms
HostbasedAcceptedAlgorithms HostbasedAcceptedKeyTypes HostbasedAuthentication
HostbasedUsesNameFromPacketOnly LoginGraceTime PermitRootLogin PermitEmptyPasswords
PermitUserEnvironment PermitTTY PermitTunnel PermitOpen PermitListen PermitUserRC
PasswordAuthentication PubkeyAuthentication PubkeyAcceptedAlgorithms PubkeyAcceptedKeyTypes
PubkeyAuthOptions KbdInteractiveAuthentication ChallengeResponseAuthentication
KerberosAuthentication KerberosOrLocalPasswd KerberosTicketCleanup KerberosGetAFSToken
GSSAPIAuthentication GSSAPICleanupCredentials GSSAPIStrictAcceptorCheck GSSAPIKeyExchange
GSSAPIStoreCredentialsOnRekey GSSAPIKexAlgorithms UsePAM PrintMotd PrintLastLog IgnoreRhosts
IgnoreUserKnownHosts X11Forwarding X11DisplayOffset X11UseLocalhost XAuthLocation
StrictModes TCPKeepAlive Compression RekeyLimit AllowUsers DenyUsers AllowGroups DenyGroups
Ciphers MACs KexAlgorithms Protocol AllowTcpForwarding AllowStreamLocalForwarding
AllowAgentForwarding DisableForwarding GatewayPorts UseDNS LogLevel LogVerbose
SyslogFacility Subsystem MaxStartups MaxAuthTries MaxSessions Banner ClientAliveInterval
ClientAliveCountMax AuthorizedKeysFile AuthorizedKeysFile2 AuthorizedKeysCommand
AuthorizedKeysCommandUser AuthorizedPrincipalsFile AuthorizedPrincipalsCommand
AuthorizedPrincipalsCommandUser AcceptEnv SetEnv PidFile ModuliFile ForceCommand
ChrootDirectory TrustedUserCAKeys RevokedKeys SecurityKeyProvider IPQoS VersionAddendum
StreamLocalBindMask StreamLocalBindUnlink FingerprintHash ExposeAuthInfo
CASignatureAlgorithms AuthenticationMethods Match Include RequiredRSASize ChannelTimeout
UnusedConnectionTimeout PerSourceMaxStartups PerSourceNetBlockSize PerSourcePenalties
PerSourcePenaltyExemptList DebianBanner UsePrivilegeSeparation KeyRegenerationInterval
ServerKeyBits RSAAuthentication RhostsRSAAuthentication RhostsAuthentication UseLogin
DSAAuthentication PAMAuthenticationViaKbdInt SkeyAuthentication ShowPatchLevel UseBlacklist
HostDSAKey PermitBlacklistedKeys ConnectionsPerPeriod
"""
)
# Keywords only a server configuration holds (client configs have the rest).
SERVER_ONLY = _words(
    """
PermitRootLogin PermitEmptyPasswords UsePAM Subsystem AuthorizedKeysFile HostKey
ListenAddress ClientAliveInterval ClientAliveCountMax MaxAuthTries LoginGraceTime AllowUsers
AllowGroups DenyUsers DenyGroups X11Forwarding PrintMotd PrintLastLog AcceptEnv
UsePrivilegeSeparation AllowTcpForwarding AllowAgentForwarding MaxSessions MaxStartups
ChrootDirectory ForceCommand StrictModes UseDNS PermitTunnel PermitUserEnvironment
TrustedUserCAKeys AuthenticationMethods KbdInteractiveAuthentication
ChallengeResponseAuthentication
"""
)
CLIENT_ONLY = _words(
    """
Host IdentityFile StrictHostKeyChecking ForwardAgent ForwardX11 HostName User ProxyJump
ProxyCommand UserKnownHostsFile IdentitiesOnly ServerAliveInterval ControlMaster ControlPath
"""
)


@dataclass(frozen=True)
class Reading:
    """How much of a text reads as sshd configuration."""

    known: int
    unknown: list[tuple[int, str]]
    server: list[str]
    client: list[str]

    @property
    def lines(self) -> int:
        return self.known + len(self.unknown)


def read_keywords(text: str, template: bool) -> Reading:
    known, unknown, server, client = 0, [], [], []
    for number, raw in enumerate(split_lines(text), start=1):
        if template and configs.is_jinja_statement(raw):
            continue
        try:
            parts = tokenize(raw)
        except ValueError:
            unknown.append((number, raw.strip()))
            continue
        if parts is None:
            continue
        key = canonical(parts[0])
        if key in KEYWORDS:
            known += 1
            if key in SERVER_ONLY:
                server.append(parts[0])
        else:
            unknown.append((number, raw.strip()))
            if key in CLIENT_ONLY:
                client.append(parts[0])
    return Reading(known, unknown, server, client)


@dataclass(frozen=True)
class Source:
    """One sshd configuration to check: its main file and why it was taken.

    ``host``: the target mirrors a host (``etc/ssh/sshd_config``; relative
    Includes are relative to ``etc/ssh`` and absolute ones are mapped into
    the target); otherwise relative Includes are relative to the main file's
    folder (standing for ``/etc/ssh``) and absolute ones are not followed.
    ``fragment``: a drop-in checked alone (unset settings are not judged).
    """

    main: str
    evidence: str
    host: bool = False
    fragment: bool = False

    @property
    def template(self) -> bool:
        return configs.is_template(self.main)


@dataclass
class Survey:
    sources: list[Source] = field(default_factory=list)
    files: list[TakenFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    inline: list[configs.InlineWrite] = field(default_factory=list)


def _named(path: str) -> str | None:
    plain = configs.untemplated(path)
    name = posixpath.basename(plain)
    folder = posixpath.basename(posixpath.dirname(plain))
    if name == "sshd_config":
        return f"named {posixpath.basename(path)}"
    if name.endswith(".sshd.conf"):
        return f"named *.sshd.conf ({posixpath.basename(path)})"
    if folder == "sshd_config.d" and name.endswith(".conf") and not name.startswith("."):
        return "a .conf file in an sshd_config.d folder"
    return None


def _sniffable(path: str) -> bool:
    name = posixpath.basename(configs.untemplated(path)).lower()
    return "ssh" in name and (name.endswith((".conf", ".cfg", "config")) or "." not in name)


def _is_dropin(path: str) -> bool:
    plain = configs.untemplated(path)
    return posixpath.basename(posixpath.dirname(plain)) == "sshd_config.d"


def survey(view: TargetView) -> Survey:
    """The configurations of ``view`` (see the module docstring)."""
    if view.stat(MAIN_CONFIG) is not None:
        return Survey([Source(MAIN_CONFIG, f"the host's {MAIN_CONFIG}", host=True)])
    index = configs.RepoIndex(view)
    out = Survey(inline=configs.inline_writes(index, IMAGE_PATHS))
    reasons: dict[str, str] = {}
    copied: dict[str, str] = {}
    for copy in configs.image_copies(index):
        if IMAGE_PATHS.fullmatch(copy.dest):
            copied[copy.source] = copy.evidence("openssh")
            if any("openssh" in p or p == "ssh" for p in copy.installs):
                reasons.setdefault(copy.source, copied[copy.source])
    for path in configs.candidates(index, lambda p: _named(p) is not None or _sniffable(p)):
        named = _named(path)
        if named is not None:
            reasons.setdefault(path, named)
        elif path not in copied:
            reasons.setdefault(path, "")  # judged by content alone
    for path, why in copied.items():
        reasons.setdefault(path, why)
    taken: list[tuple[str, str]] = []
    for path in sorted(reasons):
        verdict = _judge(view, path, reasons[path], path in copied)
        if verdict is None:
            continue
        out.files.append(verdict)
        if verdict.status == "taken":
            taken.append((path, verdict.evidence))
        else:
            out.problems.append(f"{path}: {verdict.evidence}")
    from jupiter.plugins.sshd.parse import parse

    included: dict[str, str] = {}
    mains = [(p, e) for p, e in taken if not _is_dropin(p)]
    for path, _ in mains:
        config = parse(view, path, host=False)
        for inc in config.texts if config is not None else ():
            if inc != path:
                included.setdefault(inc, path)
    for path, evidence in taken:
        if path in included:
            _set_role(out, path, "include", f"{evidence}; included by {included[path]}")
            continue
        fragment = _is_dropin(path)
        if fragment:
            evidence += "; no sshd_config here includes it, so only the settings it sets are judged"
        role = "fragment" if fragment else ("template" if configs.is_template(path) else "config")
        _set_role(out, path, role, evidence)
        out.sources.append(Source(path, evidence, fragment=fragment))
    return out


def _set_role(out: Survey, path: str, role: str, evidence: str) -> None:
    out.files = [
        TakenFile(f.path, f.domain, evidence, f.status, role) if f.path == path else f
        for f in out.files
    ]


def _judge(view: TargetView, path: str, why: str, copied: bool) -> TakenFile | None:
    try:
        text = configs.read_config_text(view, path)
    except InputError as exc:
        return TakenFile(path, DOMAIN, str(exc), "refused") if why else None
    template = configs.is_template(path)
    if template:
        problem = configs.template_problem(path, text)
        if problem is not None:
            return TakenFile(path, DOMAIN, problem, "refused")
    reading = read_keywords(text, template)
    share = reading.known / reading.lines if reading.lines else 0.0
    if not why:  # found by its name mentioning ssh: the content decides
        if len(reading.server) < 2:
            return None
        if reading.client or share < 0.8:
            return TakenFile(
                path,
                DOMAIN,
                f"holds sshd keywords ({', '.join(reading.server[:4])}) but also "
                f"{_unknown(reading)}: ambiguous, not edited",
                "ambiguous",
            )
        return TakenFile(
            path,
            DOMAIN,
            f"content: {reading.known} sshd keywords ({', '.join(reading.server[:4])}) and "
            "nothing else",
        )
    if reading.known == 0 or share < 0.5:
        return TakenFile(
            path,
            DOMAIN,
            f"{why}, but it does not read as sshd configuration ({_unknown(reading)}); not edited",
            "refused",
        )
    if reading.client and not reading.server:
        return TakenFile(
            path,
            DOMAIN,
            f"{why}, but it holds ssh client keywords ({', '.join(reading.client[:3])}): "
            "ambiguous, not edited",
            "ambiguous",
        )
    if copied and not any(w in why for w in ("installs openssh", "installs ssh")):
        named = _named(path)
        if named is None and len(reading.server) < 2:
            return TakenFile(path, DOMAIN, f"{why}: ambiguous, not edited", "ambiguous")
    return TakenFile(path, DOMAIN, f"{why} and reads as sshd configuration")


def _unknown(reading: Reading) -> str:
    if not reading.unknown:
        return "no sshd keyword"
    number, text = reading.unknown[0]
    more = len(reading.unknown) - 1
    extra = f" and {more} more such lines" if more else ""
    return f"line {number} {text[:40]!r} is no sshd keyword{extra}"
