"""Kubernetes objects as parsed from manifest files: resources, their pod
spec and containers, with the effective security settings of each container
(the container's ``securityContext`` overrides the pod's)."""

from __future__ import annotations

from collections.abc import Container as Membership
from dataclasses import dataclass
from typing import Any

from jupiter.plugins.kit import decode_text, project_files
from jupiter.plugins.kubernetes import parse as k8s_yaml
from jupiter.plugins.kubernetes.parse import Document
from jupiter.targets.base import TargetView

POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


@dataclass
class Resource:
    """One Kubernetes object of a parsed file."""

    path: str
    doc: Document
    node: Any
    kind: str
    name: str
    namespace: str | None

    @property
    def identity(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def checkov_id(self) -> str:
        """Checkov's ``resource`` field: ``Kind.namespace.name``."""
        return f"{self.kind}.{self.namespace or 'default'}.{self.name}"

    @property
    def line(self) -> int:
        return self.doc.line_of(self.node) or self.doc.first_line

    def pod_spec(self) -> Any:
        node = self.node
        for key in POD_SPEC_PATHS.get(self.kind, ()):
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, dict) and self.kind in POD_SPEC_PATHS else None

    def containers(self) -> list[Container]:
        spec = self.pod_spec()
        out: list[Container] = []
        for field in ("initContainers", "containers"):
            items = spec.get(field) if spec is not None else None
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict):
                    out.append(Container(self, item, field == "initContainers"))
        return out


@dataclass
class Container:
    resource: Resource
    node: Any
    init: bool

    @property
    def name(self) -> str:
        return str(self.node.get("name", "?"))

    @property
    def identity(self) -> str:
        return f"{self.resource.identity}/{self.name}"

    @property
    def line(self) -> int:
        return self.resource.doc.line_of(self.node) or self.resource.line

    def sc(self) -> dict[str, Any]:
        value = self.node.get("securityContext")
        return value if isinstance(value, dict) else {}

    def pod_sc(self) -> dict[str, Any]:
        value = (self.resource.pod_spec() or {}).get("securityContext")
        return value if isinstance(value, dict) else {}

    def effective(self, key: str) -> Any:
        sc = self.sc()
        return sc[key] if key in sc else self.pod_sc().get(key)

    def caps(self, field: str) -> list[str]:
        caps = self.sc().get("capabilities")
        values = caps.get(field) if isinstance(caps, dict) else None
        return [str(v).upper().removeprefix("CAP_") for v in values or []]

    def seccomp_type(self) -> str | None:
        for sc in (self.sc(), self.pod_sc()):
            profile = sc.get("seccompProfile")
            if isinstance(profile, dict) and profile.get("type"):
                return str(profile["type"])
        return None


def uid_of(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def manifest_paths(view: TargetView) -> list[str]:
    from jupiter.plugins.kubernetes.layouts import helm_chart

    # Helm templates are not YAML until rendered (see layouts.helm_decision).
    return project_files(
        view, lambda p: p.endswith((".yaml", ".yml")) and helm_chart(view, p) is None
    )


def load_resources(
    view: TargetView, path: str, *, fresh: Membership[int] = ()
) -> tuple[list[Document], list[Resource]]:
    """Parse ``path``; InputError (file and line) when it is not valid YAML.

    The parsed documents are shared with other callers (see
    :func:`k8s_yaml.load`) and must not be changed, except those whose
    index is in ``fresh``.
    """
    return parse_resources(path, view.read_bytes(path), fresh)


def parse_resources(
    path: str, raw: bytes, fresh: Membership[int] = ()
) -> tuple[list[Document], list[Resource]]:
    """:func:`load_resources` on the bytes of ``path`` read by the caller."""
    text = decode_text(path, raw)
    docs = k8s_yaml.load(path, text, fresh)
    resources = []
    for doc in docs:
        data = doc.data
        if not isinstance(data, dict) or "apiVersion" not in data:
            continue
        meta = data.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        kind, name, ns = data.get("kind"), meta.get("name"), meta.get("namespace")
        if isinstance(kind, str) and name is not None:
            resources.append(
                Resource(path, doc, data, kind, str(name), None if ns is None else str(ns))
            )
    return docs, resources
