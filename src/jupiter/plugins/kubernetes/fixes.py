"""The edits behind ``kubernetes-pod-security``: one fixer per rule.

A fixer changes one container (or pod, or resource) of a parsed document in
place and records what a reviewer must know in :class:`Edit`. Fixers only
run on targets that fail their rule, so running one twice changes nothing.

Privilege settings are fixed together, because the API server rejects
``allowPrivilegeEscalation: false`` next to ``privileged: true`` or an added
CAP_SYS_ADMIN (``validation.go``: "cannot set allowPrivilegeEscalation to
false and privileged to true" / "... and capabilities.Add CAP_SYS_ADMIN").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jupiter.plugins.kubernetes import detect as k8s
from jupiter.plugins.kubernetes.parse import new_map, new_seq, set_path

DEFAULT_UID = 10001


class ResourceValues(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cpu: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?m?$")
    memory: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?([EPTGMK]i?|[mk])?$")


class ResourcePolicy(BaseModel):
    """Values for missing ``resources`` entries (only missing ones are set)."""

    model_config = ConfigDict(extra="forbid")

    requests: ResourceValues = Field(default_factory=ResourceValues)
    limits: ResourceValues = Field(default_factory=ResourceValues)


class K8sParams(BaseModel):
    """Parameters of ``kubernetes-pod-security``.

    * ``run_as_user`` — UID set when a container has no numeric non-root one;
    * ``resources`` — requests/limits to fill in; without it K8S-RESOURCES
      needs a human;
    * ``namespace`` — namespace for resources in ``default``;
    * ``read_only_root_filesystem`` — allow setting readOnlyRootFilesystem
      (only the team knows whether the app writes to its filesystem);
    * ``image_pins`` — image as written → pinned reference (``repo:tag@sha256:…``).
    """

    model_config = ConfigDict(extra="forbid")

    run_as_user: int = Field(default=DEFAULT_UID, ge=k8s.HIGH_UID, le=2**31 - 1)
    resources: ResourcePolicy | None = None
    namespace: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    read_only_root_filesystem: bool = False
    image_pins: dict[str, str] = Field(default_factory=dict)


@dataclass
class Edit:
    """What the fixers did to one file, and what a reviewer must know."""

    params: K8sParams
    changed: bool = False
    disruption: bool = False
    warnings: list[str] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)

    def set(self, node: Any, keys: list[str], value: Any) -> None:
        if set_path(node, keys, value):
            self.changed = True

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)


Fixer = Callable[[Edit, k8s.Resource, "k8s.Container | None"], None]
SC = "securityContext"


def _who(r: k8s.Resource, c: k8s.Container | None) -> str:
    return f"container {c.name!r} of {r.kind} {r.name}" if c else f"{r.kind} {r.name}"


def _remove_cap(e: Edit, c: k8s.Container, cap: str) -> bool:
    caps = c.sc().get("capabilities")
    added = caps.get("add") if isinstance(caps, dict) else None
    if not isinstance(added, list):
        return False
    doomed = [i for i, v in enumerate(added) if str(v).upper().removeprefix("CAP_") == cap]
    for i in reversed(doomed):
        del added[i]
    if doomed and not added and isinstance(caps, dict):
        del caps["add"]
    e.changed |= bool(doomed)
    return bool(doomed)


def fix_privileged(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    assert c is not None
    if c.sc().get("privileged") is True:
        e.set(c.node, [SC, "privileged"], False)
        e.disruption = True
        e.warn(
            f"{_who(r, c)} no longer runs privileged: it loses access to host devices and "
            "every capability it did not add; test what it does on the node (mounts, "
            "devices, sysctls) before rollout"
        )


def fix_sys_admin(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    assert c is not None
    if _remove_cap(e, c, "SYS_ADMIN"):
        e.disruption = True
        e.warn(
            f"{_who(r, c)} loses CAP_SYS_ADMIN (mount, namespaces, many admin syscalls); "
            "check that it does not need them"
        )


def fix_escalation(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    assert c is not None
    # The API server refuses allowPrivilegeEscalation: false on a privileged
    # container or one that adds CAP_SYS_ADMIN: those go first.
    fix_privileged(e, r, c)
    fix_sys_admin(e, r, c)
    e.set(c.node, [SC, "allowPrivilegeEscalation"], False)
    e.warn(
        f"{_who(r, c)}: setuid binaries (sudo, ping on old images) can no longer raise privileges"
    )


def fix_non_root(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    assert c is not None
    uid = k8s.uid_of(c.effective("runAsUser"))
    if uid is None or uid == 0:
        e.set(c.node, [SC, "runAsUser"], e.params.run_as_user)
        _warn_uid(e, r, c)
    e.set(c.node, [SC, "runAsNonRoot"], True)


def fix_low_uid(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    assert c is not None
    e.set(c.node, [SC, "runAsUser"], e.params.run_as_user)
    _warn_uid(e, r, c)


def _warn_uid(e: Edit, r: k8s.Resource, c: k8s.Container) -> None:
    e.warn(
        f"{_who(r, c)} now runs as UID {e.params.run_as_user}: files the image expects to "
        "write must be writable by that UID (set fsGroup for volumes); runAsNonRoot alone "
        "would make the kubelet refuse images whose USER is root or a name"
    )


def _append_cap(e: Edit, c: k8s.Container, cap: str) -> None:
    caps = c.sc().get("capabilities")
    drop = caps.get("drop") if isinstance(caps, dict) else None
    if isinstance(drop, list):
        drop.append(cap)
        e.changed = True
    else:
        e.set(c.node, [SC, "capabilities", "drop"], new_seq([cap]))


def fix_drop_all(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    assert c is not None
    _append_cap(e, c, "ALL")
    e.warn(
        f"{_who(r, c)} drops every capability it does not list in capabilities.add (e.g. "
        "NET_BIND_SERVICE for ports below 1024, CHOWN, SETUID); add back what it needs"
    )


def fix_net_raw(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    assert c is not None
    if _remove_cap(e, c, "NET_RAW"):
        e.disruption = True
        e.warn(f"{_who(r, c)} no longer adds NET_RAW (raw sockets: ping, packet capture)")
    if not {"ALL", "NET_RAW"} & set(c.caps("drop")):
        _append_cap(e, c, "NET_RAW")


def fix_seccomp(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    assert c is not None
    own = c.sc().get("seccompProfile")
    if isinstance(own, dict) and own.get("type"):
        e.set(own, ["type"], "RuntimeDefault")
    else:
        spec = r.pod_spec()
        assert spec is not None
        e.set(spec, [SC, "seccompProfile", "type"], "RuntimeDefault")
    e.warn(
        f"{r.kind} {r.name} runs under the container runtime's default seccomp profile: "
        "rare syscalls (e.g. for debuggers or old runtimes) are refused"
    )


def fix_sa_token(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    spec = r.pod_spec()
    assert spec is not None
    e.set(spec, ["automountServiceAccountToken"], False)
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if account and account != "default":
        # A dedicated service account usually exists because the app calls the API.
        e.disruption = True
        e.warn(
            f"pods of {r.kind} {r.name} run as service account {account!r}, which "
            "suggests they call the Kubernetes API: they no longer get its token; mount a "
            "projected service account token volume if they need it"
        )
    else:
        e.warn(
            f"pods of {r.kind} {r.name} no longer get a Kubernetes API token; if the app "
            "calls the API, mount a projected service account token for it instead"
        )


def fix_read_only(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    assert c is not None
    if not e.params.read_only_root_filesystem:
        e.manual.append(
            f"{_who(r, c)}: only the team knows which paths the app writes; mount emptyDir "
            "volumes there, then set readOnlyRootFilesystem: true (or plan with "
            "read_only_root_filesystem=true)"
        )
        return
    e.set(c.node, [SC, "readOnlyRootFilesystem"], True)
    e.warn(f"{_who(r, c)} can no longer write outside its volumes (/tmp included)")


def _fix_image(e: Edit, r: k8s.Resource, c: k8s.Container | None, digest: bool) -> None:
    assert c is not None
    image = c.node.get("image")
    pin = e.params.image_pins.get(image) if isinstance(image, str) else None
    ok = pin is not None and (
        "@" in pin if digest else "@" in pin or k8s.image_tag(pin) not in ("", "latest")
    )
    if pin is None or not ok:
        what = "a digest (repo:tag@sha256:...)" if digest else "a fixed version tag"
        e.manual.append(
            f"{_who(r, c)}: pick {what} for image {image!r} that you have tested, and give it "
            "in image_pins (image as written -> pinned reference)"
        )
        return
    e.set(c.node, ["image"], pin)


def fix_image_latest(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    _fix_image(e, r, c, digest=False)


def fix_image_digest(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    _fix_image(e, r, c, digest=True)


def fix_namespace(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    if e.params.namespace is None:
        e.manual.append(
            f"{r.kind} {r.name} is in the default namespace: choose the namespace it belongs "
            "to (plan with namespace=...) and move the objects that refer to it along"
        )
        return
    e.set(r.node, ["metadata", "namespace"], e.params.namespace)
    e.warn(
        f"{r.kind} {r.name} moves to namespace {e.params.namespace!r}: the copy in "
        "'default' is not deleted by kubectl apply, and Services, RoleBindings and "
        "Secrets it uses must be in the same namespace"
    )


def fix_probes(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    e.manual.append(
        f"{_who(r, c)}: liveness and readiness probes depend on the app (endpoint, port, "
        "timing); add them by hand"
    )


def fix_resources(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    assert c is not None
    policy = e.params.resources
    missing = k8s.missing_resources(c)
    unknown = [
        f"{g}.{k}" for g, k in missing if policy is None or getattr(getattr(policy, g), k) is None
    ]
    if unknown:
        e.manual.append(
            f"{_who(r, c)} has no {', '.join(unknown)}: size them from the app's measured "
            "usage and give them in the resources parameter"
        )
        return
    assert policy is not None
    res = c.node.get("resources")
    if not isinstance(res, dict):
        built = new_map()
        for group, key in missing:
            built.setdefault(group, new_map())[key] = getattr(getattr(policy, group), key)
        e.set(c.node, ["resources"], built)
    else:
        for group, key in missing:
            e.set(res, [group, key], getattr(getattr(policy, group), key))
    e.warn(
        f"{_who(r, c)}: a memory limit below the app's peak gets it OOM-killed; a CPU "
        "limit throttles it"
    )


FIXERS: dict[str, Fixer] = {
    "K8S-PRIVILEGED": fix_privileged,
    "K8S-PRIV-ESCALATION": fix_escalation,
    "K8S-CAP-SYS-ADMIN": fix_sys_admin,
    "K8S-RUN-AS-NON-ROOT": fix_non_root,
    "K8S-LOW-UID": fix_low_uid,
    "K8S-CAPS-DROP-ALL": fix_drop_all,
    "K8S-CAP-NET-RAW": fix_net_raw,
    "K8S-SECCOMP": fix_seccomp,
    "K8S-SA-TOKEN-AUTOMOUNT": fix_sa_token,
    "K8S-READ-ONLY-ROOT-FS": fix_read_only,
    "K8S-IMAGE-LATEST": fix_image_latest,
    "K8S-IMAGE-DIGEST": fix_image_digest,
    "K8S-DEFAULT-NAMESPACE": fix_namespace,
    "K8S-PROBES": fix_probes,
    "K8S-RESOURCES": fix_resources,
}


def api_violations(resource: k8s.Resource) -> list[str]:
    """Combinations the API server rejects (a safety net run by ``validate``)."""
    out = []
    for c in resource.containers():
        if c.sc().get("allowPrivilegeEscalation") is False:
            if c.sc().get("privileged") is True:
                out.append(
                    f"{_who(resource, c)}: allowPrivilegeEscalation: false with privileged: true"
                )
            if "SYS_ADMIN" in c.caps("add"):
                out.append(
                    f"{_who(resource, c)}: allowPrivilegeEscalation: false with "
                    "capabilities.add SYS_ADMIN"
                )
        user, non_root = k8s.uid_of(c.effective("runAsUser")), c.effective("runAsNonRoot")
        if non_root is True and user == 0:
            out.append(
                f"{_who(resource, c)}: runAsNonRoot: true with runAsUser: 0 (the kubelet "
                "refuses to start it)"
            )
    return out
