"""Built-in Kubernetes pod-security checks on manifest files.

Every ``*.yaml``/``*.yml`` file of the target (outside VCS, vendored and
virtualenv directories) is split into documents; documents whose ``kind``
carries a pod template are checked per container, every namespaced resource
for its namespace. Files that are not valid YAML (Helm templates, broken
files) are skipped by :func:`check`; :func:`scan` also returns why, and
planning a fix in such a file raises :class:`InputError` naming file and line.

Rule ids (``K8S-<SUBJECT>``) and the Checkov checks that mean the same:

========================  =========================  ==================================
rule                      Checkov                    passes when
========================  =========================  ==================================
K8S-PRIVILEGED            CKV_K8S_16                 ``privileged`` is not true
K8S-PRIV-ESCALATION       CKV_K8S_20                 ``allowPrivilegeEscalation: false``
K8S-CAP-SYS-ADMIN         CKV_K8S_39                 SYS_ADMIN is not added
K8S-RUN-AS-NON-ROOT       CKV_K8S_23                 runAsNonRoot true or runAsUser > 0,
                                                     and runAsUser is not 0
K8S-LOW-UID               CKV_K8S_40                 runAsUser >= 10000 (or hostUsers false)
K8S-CAPS-DROP-ALL         CKV_K8S_37                 capabilities.drop has ALL
K8S-CAP-NET-RAW           CKV_K8S_28                 NET_RAW (or ALL) dropped, not added
K8S-SECCOMP               CKV_K8S_31                 seccompProfile RuntimeDefault/Localhost
K8S-SA-TOKEN-AUTOMOUNT    CKV_K8S_38                 pod ``automountServiceAccountToken: false``
K8S-READ-ONLY-ROOT-FS     CKV_K8S_22                 ``readOnlyRootFilesystem: true``
K8S-IMAGE-LATEST          CKV_K8S_14                 image has a tag other than latest, or a digest
K8S-IMAGE-DIGEST          CKV_K8S_43                 image is pinned by digest
K8S-DEFAULT-NAMESPACE     CKV_K8S_21                 metadata.namespace set, not ``default``
K8S-PROBES                CKV_K8S_8, CKV_K8S_9       liveness and readiness probes (not Jobs)
K8S-RESOURCES             CKV_K8S_10..13             cpu/memory requests and limits
========================  =========================  ==================================

Container settings are the effective ones (the container's securityContext
overrides the pod's). A container finding's ``identity`` is
``<kind>/<name>/<container>`` and its location the line of the container;
pod- and resource-level findings use ``<kind>/<name>`` and the resource's
line, so fingerprints survive edits that move lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from jupiter.errors import InputError
from jupiter.models import Category, FindingRecord, Location, Severity
from jupiter.plugins.kubernetes import extra
from jupiter.plugins.kubernetes.resources import (
    POD_SPEC_PATHS,
    Container,
    Resource,
    load_resources,
    manifest_paths,
    parse_resources,
    uid_of,
)
from jupiter.targets.base import TargetView

SCANNER = "jupiter-k8s"
HIGH_UID = 10000
# Kinds Checkov's CKV_K8S_21 looks at: the namespaced resources apps ship.
NAMESPACED_KINDS = frozenset(
    {
        *POD_SPEC_PATHS,
        "Service",
        "Secret",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Ingress",
    }
)
BATCH_KINDS = frozenset({"Job", "CronJob"})


Scope = Literal["container", "pod", "resource"]
Check = Callable[[Resource, "Container | None"], "str | None"]


@dataclass(frozen=True)
class Rule:
    rule_id: str
    title: str
    severity: Severity
    checkov: tuple[str, ...]
    scope: Scope
    check: Check
    init_containers: bool = True  # whether init containers are checked too
    batch: bool = True  # whether Jobs and CronJobs are checked


def _privileged(_: Resource, c: Container | None) -> str | None:
    return "securityContext.privileged: true" if c and c.sc().get("privileged") is True else None


def _escalation(_: Resource, c: Container | None) -> str | None:
    value = c.sc().get("allowPrivilegeEscalation") if c else False
    return None if value is False else f"allowPrivilegeEscalation: {_show(value)}"


def _sys_admin(_: Resource, c: Container | None) -> str | None:
    return "capabilities.add: SYS_ADMIN" if c and "SYS_ADMIN" in c.caps("add") else None


def _non_root(_: Resource, c: Container | None) -> str | None:
    assert c is not None
    user, non_root = uid_of(c.effective("runAsUser")), c.effective("runAsNonRoot")
    if user == 0:
        return "runAsUser: 0"
    if non_root is True or (user is not None and user > 0):
        return None
    return f"runAsNonRoot: {_show(non_root)}, runAsUser: {_show(user)}"


def _low_uid(r: Resource, c: Container | None) -> str | None:
    assert c is not None
    if (r.pod_spec() or {}).get("hostUsers") is False:
        return None
    user = uid_of(c.effective("runAsUser"))
    return None if user is not None and user >= HIGH_UID else f"runAsUser: {_show(user)}"


def _drop_all(_: Resource, c: Container | None) -> str | None:
    assert c is not None
    return None if "ALL" in c.caps("drop") else f"capabilities.drop: {c.caps('drop') or 'unset'}"


def _net_raw(_: Resource, c: Container | None) -> str | None:
    assert c is not None
    if "NET_RAW" in c.caps("add"):
        return "capabilities.add: NET_RAW"
    drop = c.caps("drop")
    return None if {"ALL", "NET_RAW"} & set(drop) else f"capabilities.drop: {drop or 'unset'}"


def _seccomp(_: Resource, c: Container | None) -> str | None:
    assert c is not None
    kind = c.seccomp_type()
    return None if kind in ("RuntimeDefault", "Localhost") else f"seccompProfile.type: {kind}"


def _sa_token(r: Resource, _: Container | None) -> str | None:
    value = (r.pod_spec() or {}).get("automountServiceAccountToken")
    return None if value is False else f"automountServiceAccountToken: {_show(value)}"


def _read_only(_: Resource, c: Container | None) -> str | None:
    assert c is not None
    value = c.sc().get("readOnlyRootFilesystem")
    return None if value is True else f"readOnlyRootFilesystem: {_show(value)}"


def image_tag(image: str) -> str:
    """The tag of an image reference ("" when it has none)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def _image_latest(_: Resource, c: Container | None) -> str | None:
    assert c is not None
    image = c.node.get("image")
    if not isinstance(image, str) or not image.strip():
        return "image: unset"
    if "@" in image or image_tag(image) not in ("", "latest"):
        return None
    return f"image: {image}"


def _image_digest(_: Resource, c: Container | None) -> str | None:
    assert c is not None
    image = c.node.get("image")
    return None if isinstance(image, str) and "@" in image else f"image: {image}"


def _namespace(r: Resource, _: Container | None) -> str | None:
    if r.kind not in NAMESPACED_KINDS or r.namespace not in (None, "default"):
        return None
    if (r.kind, r.name) in (("ServiceAccount", "default"), ("Service", "kubernetes")):
        return None
    return f"metadata.namespace: {r.namespace or 'unset'}"


def _probes(_: Resource, c: Container | None) -> str | None:
    assert c is not None
    missing = [p for p in ("livenessProbe", "readinessProbe") if not c.node.get(p)]
    return f"no {' or '.join(missing)}" if missing else None


RESOURCE_KEYS = (
    ("requests", "cpu"),
    ("requests", "memory"),
    ("limits", "cpu"),
    ("limits", "memory"),
)


def missing_resources(c: Container) -> list[tuple[str, str]]:
    res = c.node.get("resources")
    res = res if isinstance(res, dict) else {}
    return [
        (group, key)
        for group, key in RESOURCE_KEYS
        if not (isinstance(res.get(group), dict) and res[group].get(key))
    ]


def _resources(_: Resource, c: Container | None) -> str | None:
    assert c is not None
    missing = missing_resources(c)
    return f"no {', '.join(f'{g}.{k}' for g, k in missing)}" if missing else None


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _checkov(rule_id: str) -> tuple[str, ...]:
    """The Checkov checks a built-in rule answers, from the fix catalog
    (``catalog/kubernetes.yaml``, ``checks.jupiter`` names the rule)."""
    from jupiter.catalog import load_catalog

    return tuple(
        ck
        for entry in load_catalog().select(framework="kubernetes")
        if rule_id in entry.checks.get("jupiter", [])
        for ck in entry.checks.get("checkov", [])
    )


H, M, L = Severity.HIGH, Severity.MEDIUM, Severity.LOW
RULES: tuple[Rule, ...] = (
    Rule(
        "K8S-PRIVILEGED",
        "Container runs privileged",
        H,
        _checkov("K8S-PRIVILEGED"),
        "container",
        _privileged,
    ),
    Rule(
        "K8S-PRIV-ESCALATION",
        "Container allows privilege escalation",
        H,
        _checkov("K8S-PRIV-ESCALATION"),
        "container",
        _escalation,
    ),
    Rule(
        "K8S-CAP-SYS-ADMIN",
        "Container adds CAP_SYS_ADMIN",
        H,
        _checkov("K8S-CAP-SYS-ADMIN"),
        "container",
        _sys_admin,
    ),
    Rule(
        "K8S-RUN-AS-NON-ROOT",
        "Container may run as root",
        H,
        _checkov("K8S-RUN-AS-NON-ROOT"),
        "container",
        _non_root,
        init_containers=False,
    ),
    Rule(
        "K8S-LOW-UID",
        "Container does not run as a high UID (>= 10000)",
        M,
        _checkov("K8S-LOW-UID"),
        "container",
        _low_uid,
        init_containers=False,
    ),
    Rule(
        "K8S-CAPS-DROP-ALL",
        "Container does not drop all capabilities",
        M,
        _checkov("K8S-CAPS-DROP-ALL"),
        "container",
        _drop_all,
    ),
    Rule(
        "K8S-CAP-NET-RAW",
        "Container keeps CAP_NET_RAW",
        M,
        _checkov("K8S-CAP-NET-RAW"),
        "container",
        _net_raw,
    ),
    Rule(
        "K8S-SECCOMP",
        "Container runs without a seccomp profile",
        M,
        _checkov("K8S-SECCOMP"),
        "container",
        _seccomp,
    ),
    Rule(
        "K8S-SA-TOKEN-AUTOMOUNT",
        "Pod mounts a service account token automatically",
        M,
        _checkov("K8S-SA-TOKEN-AUTOMOUNT"),
        "pod",
        _sa_token,
    ),
    Rule(
        "K8S-READ-ONLY-ROOT-FS",
        "Container root filesystem is writable",
        L,
        _checkov("K8S-READ-ONLY-ROOT-FS"),
        "container",
        _read_only,
    ),
    Rule(
        "K8S-IMAGE-LATEST",
        "Container image has no fixed tag",
        M,
        _checkov("K8S-IMAGE-LATEST"),
        "container",
        _image_latest,
    ),
    Rule(
        "K8S-IMAGE-DIGEST",
        "Container image is not pinned by digest",
        L,
        _checkov("K8S-IMAGE-DIGEST"),
        "container",
        _image_digest,
    ),
    Rule(
        "K8S-DEFAULT-NAMESPACE",
        "Resource is in the default namespace",
        L,
        _checkov("K8S-DEFAULT-NAMESPACE"),
        "resource",
        _namespace,
    ),
    Rule(
        "K8S-PROBES",
        "Container has no liveness or readiness probe",
        L,
        _checkov("K8S-PROBES"),
        "container",
        _probes,
        init_containers=False,
        batch=False,
    ),
    Rule(
        "K8S-RESOURCES",
        "Container has no CPU/memory requests or limits",
        L,
        _checkov("K8S-RESOURCES"),
        "container",
        _resources,
    ),
)
RULES += tuple(
    Rule(rule_id, title, severity, _checkov(rule_id), scope, check)
    for rule_id, title, severity, scope, check in extra.RULES
)
RULES_BY_ID = {r.rule_id: r for r in RULES}
CHECKOV_TO_RULE = {ck: r for r in RULES for ck in r.checkov}
RULE_IDS = frozenset({*RULES_BY_ID, *CHECKOV_TO_RULE})


def rule_for(rule_id: str) -> Rule | None:
    """The built-in rule for one of our ids or a Checkov id that means the same."""
    return RULES_BY_ID.get(rule_id) or CHECKOV_TO_RULE.get(rule_id)


def targets(resource: Resource, rule: Rule) -> Iterator[Container | None]:
    """What a rule looks at in one resource: its containers, or the resource."""
    if rule.scope != "container":
        if rule.scope == "resource" or resource.pod_spec() is not None:
            yield None
        return
    if not rule.batch and resource.kind in BATCH_KINDS:
        return
    for c in resource.containers():
        if rule.init_containers or not c.init:
            yield c


def check_resource(resource: Resource, rule: Rule) -> Iterator[FindingRecord]:
    for c in targets(resource, rule):
        evidence = rule.check(resource, c)
        if evidence is None:
            continue
        where = f"container {c.name!r} of " if c else ""
        yield FindingRecord(
            scanner=SCANNER,
            rule_id=rule.rule_id,
            category=Category.IAC_KUBERNETES,
            title=f"{rule.title}: {where}{resource.kind} {resource.name}",
            severity=rule.severity,
            evidence=evidence,
            location=Location(path=resource.path, start_line=c.line if c else resource.line),
            identity=c.identity if c else resource.identity,
            extra={
                "checkov": list(rule.checkov),
                "resource": resource.checkov_id,
                "kind": resource.kind,
                "name": resource.name,
                "container": c.name if c else None,
            },
        )


@dataclass
class Scan:
    findings: list[FindingRecord]
    errors: list[InputError]


def scan(view: TargetView) -> Scan:
    """All findings, and the files that could not be parsed (skipped)."""
    from jupiter.plugins.kubernetes.layouts import kustomize, missing

    result = Scan([], [])
    patches = kustomize(view)
    for path in manifest_paths(view):
        try:
            _, resources = load_resources(view, path)
        except InputError as exc:
            result.errors.append(exc)
            continue
        for resource in resources:
            for rule in RULES:
                found = check_resource(resource, rule)
                if patches.is_patch(path):
                    # A kustomize patch produces only what it sets; a missing
                    # field comes from the base, which is scanned on its own.
                    found = (f for f in found if not missing(f.evidence))
                result.findings.extend(found)
    return result


def check(view: TargetView) -> list[FindingRecord]:
    """All findings of every manifest that parses (see :func:`scan`)."""
    return scan(view).findings


__all__ = [
    "HIGH_UID",
    "RULES",
    "RULE_IDS",
    "SCANNER",
    "Container",
    "Resource",
    "Rule",
    "Scan",
    "check",
    "check_resource",
    "load_resources",
    "manifest_paths",
    "missing_resources",
    "parse_resources",
    "rule_for",
    "scan",
    "targets",
    "uid_of",
]
