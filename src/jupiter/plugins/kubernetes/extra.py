"""Kubernetes checks beyond pod security proper, registered in
:data:`jupiter.plugins.kubernetes.detect.RULES` like the others (their
fixers live in :mod:`jupiter.plugins.kubernetes.fixes_extra`).

========================  =======================  ==================================
rule                      Checkov                  passes when
========================  =======================  ==================================
K8S-POD-SECURITY-CONTEXT  CKV_K8S_29               the pod spec has a securityContext
K8S-CONTAINER-SC          CKV_K8S_30               the container has a securityContext
K8S-IMAGE-PULL-POLICY     CKV_K8S_15               imagePullPolicy Always (or a digest,
                                                   or an untagged/latest image without
                                                   a policy: Kubernetes pulls those)
K8S-DEFAULT-SA-TOKEN      CKV_K8S_41               the ``default`` ServiceAccount does
                                                   not automount its token
K8S-HOST-NAMESPACES       CKV_K8S_17, _18, _19     hostPID, hostIPC, hostNetwork unset
K8S-HOST-PORT             CKV_K8S_26               no container port binds a hostPort
K8S-DOCKER-SOCKET         CKV_K8S_27               no hostPath volume of docker.sock
K8S-SECRET-ENV            CKV_K8S_35               no env var read from a Secret
========================  =======================  ==================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from jupiter.models import Severity
from jupiter.plugins.kubernetes.resources import Container, Resource


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    return str(value).lower() if isinstance(value, bool) else str(value)


def pod_security_context(r: Resource, _: Container | None) -> str | None:
    sc = (r.pod_spec() or {}).get("securityContext")
    return None if isinstance(sc, dict) and sc else "pod securityContext: unset"


def container_security_context(_: Resource, c: Container | None) -> str | None:
    assert c is not None
    sc = c.node.get("securityContext")
    return None if isinstance(sc, dict) and sc else "securityContext: unset"


def _tag_and_digest(image: str) -> tuple[str, bool]:
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    return (last.split(":", 1)[1] if ":" in last else ""), bool(digest)


def image_pull_policy(_: Resource, c: Container | None) -> str | None:
    assert c is not None
    image = c.node.get("image")
    if not isinstance(image, str) or not image.strip():
        return None  # Checkov cannot judge it either
    tag, digest = _tag_and_digest(image)
    policy = c.node.get("imagePullPolicy")
    if policy is None:
        return None if tag in ("", "latest") or digest else "imagePullPolicy: unset"
    return None if digest or policy == "Always" else f"imagePullPolicy: {policy}"


def default_sa_token(r: Resource, _: Container | None) -> str | None:
    if r.kind != "ServiceAccount" or r.name != "default":
        return None
    value = r.node.get("automountServiceAccountToken")
    return None if value is False else f"automountServiceAccountToken: {_show(value)}"


def host_namespaces(r: Resource, _: Container | None) -> str | None:
    spec = r.pod_spec() or {}
    shared = [k for k in ("hostPID", "hostIPC", "hostNetwork") if spec.get(k)]
    return ", ".join(f"{k}: true" for k in shared) or None


def host_port(_: Resource, c: Container | None) -> str | None:
    assert c is not None
    ports = c.node.get("ports")
    bound = [
        str(p["hostPort"])
        for p in (ports if isinstance(ports, list) else [])
        if isinstance(p, dict) and p.get("hostPort")
    ]
    return f"hostPort: {', '.join(bound)}" if bound else None


def docker_socket(r: Resource, _: Container | None) -> str | None:
    volumes = (r.pod_spec() or {}).get("volumes")
    for v in volumes if isinstance(volumes, list) else []:
        host = v.get("hostPath") if isinstance(v, dict) else None
        path = host.get("path") if isinstance(host, dict) else None
        if isinstance(path, str) and path.rstrip("/").endswith("docker.sock"):
            return f"hostPath volume {v.get('name')!r}: {path}"
    return None


def secret_env(_: Resource, c: Container | None) -> str | None:
    assert c is not None
    env = c.node.get("env")
    names = [
        str(e.get("name"))
        for e in (env if isinstance(env, list) else [])
        if isinstance(e, dict)
        and isinstance(e.get("valueFrom"), dict)
        and "secretKeyRef" in e["valueFrom"]
    ]
    env_from = c.node.get("envFrom")
    if any(isinstance(e, dict) and "secretRef" in e for e in env_from or []):
        names.append("envFrom secretRef")
    return f"secrets in env: {', '.join(names)}" if names else None


H, M, L = Severity.HIGH, Severity.MEDIUM, Severity.LOW
Check = Callable[[Resource, "Container | None"], "str | None"]
#: (rule id, title, severity, scope, check); the Checkov ids come from the catalog.
RULES: tuple[tuple[str, str, Severity, Literal["container", "pod", "resource"], Check], ...] = (
    ("K8S-POD-SECURITY-CONTEXT", "Pod has no securityContext", L, "pod", pod_security_context),
    (
        "K8S-CONTAINER-SC",
        "Container has no securityContext",
        L,
        "container",
        container_security_context,
    ),
    (
        "K8S-IMAGE-PULL-POLICY",
        "Container image may run from a stale node cache",
        L,
        "container",
        image_pull_policy,
    ),
    (
        "K8S-DEFAULT-SA-TOKEN",
        "The default service account automounts its token",
        M,
        "resource",
        default_sa_token,
    ),
    (
        "K8S-HOST-NAMESPACES",
        "Pod shares the node's PID, IPC or network namespace",
        H,
        "pod",
        host_namespaces,
    ),
    ("K8S-HOST-PORT", "Container binds a port on the node", M, "container", host_port),
    ("K8S-DOCKER-SOCKET", "Pod mounts the container runtime socket", H, "pod", docker_socket),
    (
        "K8S-SECRET-ENV",
        "Container reads secrets into environment variables",
        L,
        "container",
        secret_env,
    ),
)
