"""Fixers for the rules of :mod:`jupiter.plugins.kubernetes.extra`.

Safe and deterministic: a pod securityContext (the runtime's default
seccomp profile, which K8S-SECCOMP sets too), a container securityContext
(no privilege escalation, which K8S-PRIV-ESCALATION sets too, fixing
``privileged`` and CAP_SYS_ADMIN first), ``imagePullPolicy: Always``, no
token on the ``default`` ServiceAccount. Host namespaces, host ports, the
runtime socket and secrets in env vars are decisions: the fixer names them.
"""

from __future__ import annotations

from jupiter.plugins.kubernetes import detect as k8s
from jupiter.plugins.kubernetes.fixes import Edit, Fixer, fix_escalation


def _who(r: k8s.Resource, c: k8s.Container | None) -> str:
    return f"container {c.name!r} of {r.kind} {r.name}" if c else f"{r.kind} {r.name}"


def fix_pod_sc(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    fix_seccomp_pod(e, r)


def fix_seccomp_pod(e: Edit, r: k8s.Resource) -> None:
    spec = r.pod_spec()
    assert spec is not None
    e.set(spec, ["securityContext", "seccompProfile", "type"], "RuntimeDefault")
    e.warn(
        f"{r.kind} {r.name} runs under the container runtime's default seccomp profile: "
        "rare syscalls (e.g. for debuggers or old runtimes) are refused"
    )


def fix_container_sc(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    fix_escalation(e, r, c)


def fix_pull_policy(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    assert c is not None
    e.set(c.node, ["imagePullPolicy"], "Always")
    e.warn(
        f"{_who(r, c)} pulls its image on every start: a pod cannot start while the "
        "registry is unreachable (pin a digest to keep cache hits safe instead)"
    )


def fix_default_sa(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
    e.set(r.node, ["automountServiceAccountToken"], False)
    e.warn(
        f"pods in namespace {r.namespace or 'default'} that use the default service "
        "account no longer get an API token unless they ask for one "
        "(automountServiceAccountToken: true in the pod spec)"
    )


def _manual(why: str) -> Fixer:
    def fix(e: Edit, r: k8s.Resource, c: k8s.Container | None) -> None:
        e.manual.append(f"{_who(r, c)}: {why}")

    return fix


FIXERS: dict[str, Fixer] = {
    "K8S-POD-SECURITY-CONTEXT": fix_pod_sc,
    "K8S-CONTAINER-SC": fix_container_sc,
    "K8S-IMAGE-PULL-POLICY": fix_pull_policy,
    "K8S-DEFAULT-SA-TOKEN": fix_default_sa,
    "K8S-HOST-NAMESPACES": _manual(
        "shares the node's namespaces (node agents, CNI and monitoring do on purpose); "
        "decide whether it must, else remove hostPID/hostIPC/hostNetwork"
    ),
    "K8S-HOST-PORT": _manual(
        "binds a port on every node it runs on; expose it through a Service instead, "
        "unless it is a node agent"
    ),
    "K8S-DOCKER-SOCKET": _manual(
        "mounts the container runtime socket, which is root on the node; decide whether "
        "it must (CI runners, node agents) or use a rootless builder"
    ),
    "K8S-SECRET-ENV": _manual(
        "reads secrets into environment variables (they leak into logs and child "
        "processes); mount the Secret as a read-only volume and read the files instead"
    ),
}
