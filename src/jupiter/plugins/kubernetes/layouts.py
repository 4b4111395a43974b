"""Where a Kubernetes field really comes from: kustomize patches and Helm
templates.

* **kustomize**: a file listed as a patch of a ``kustomization.yaml``
  (``patches``, ``patchesStrategicMerge``) is a partial manifest. A value it
  sets explicitly is produced there and is fixed there; a field it does not
  mention comes from the base, which is scanned and fixed as a manifest of
  its own. So in a patch only explicit insecure values are findings, and a
  scanner's finding about a missing field in a patch names the base.
* **Helm**: a file under a chart's ``templates/`` (a ``Chart.yaml`` next to
  it) is not YAML until rendered. It is not scanned; a finding on it is
  ``needs_manual`` naming the values key the template reads for the field
  (``.Values.securityContext``) when the template shows one.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from functools import cache

from jupiter.plugins.kit import project_files
from jupiter.targets.base import TargetView

KUSTOMIZATION = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})
_MISSING = re.compile(r"\bunset\b|: None\b|^no ")
_VALUES = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")

#: The manifest keys a rule looks at, most specific first.
RULE_FIELDS: dict[str, tuple[str, ...]] = {
    "K8S-PRIVILEGED": ("privileged", "securityContext"),
    "K8S-PRIV-ESCALATION": ("allowPrivilegeEscalation", "securityContext"),
    "K8S-CAP-SYS-ADMIN": ("capabilities", "securityContext"),
    "K8S-RUN-AS-NON-ROOT": ("runAsNonRoot", "runAsUser", "securityContext"),
    "K8S-LOW-UID": ("runAsUser", "securityContext"),
    "K8S-CAPS-DROP-ALL": ("capabilities", "securityContext"),
    "K8S-CAP-NET-RAW": ("capabilities", "securityContext"),
    "K8S-SECCOMP": ("seccompProfile", "securityContext"),
    "K8S-SA-TOKEN-AUTOMOUNT": ("automountServiceAccountToken", "serviceAccount"),
    "K8S-READ-ONLY-ROOT-FS": ("readOnlyRootFilesystem", "securityContext"),
    "K8S-IMAGE-LATEST": ("image",),
    "K8S-IMAGE-DIGEST": ("image",),
    "K8S-DEFAULT-NAMESPACE": ("namespace",),
    "K8S-PROBES": ("livenessProbe", "readinessProbe"),
    "K8S-RESOURCES": ("resources",),
    "K8S-POD-SECURITY-CONTEXT": ("podSecurityContext", "securityContext"),
    "K8S-CONTAINER-SC": ("securityContext",),
    "K8S-IMAGE-PULL-POLICY": ("imagePullPolicy", "pullPolicy"),
    "K8S-DEFAULT-SA-TOKEN": ("automountServiceAccountToken",),
    "K8S-HOST-NAMESPACES": ("hostNetwork", "hostPID", "hostIPC"),
    "K8S-HOST-PORT": ("hostPort",),
    "K8S-DOCKER-SOCKET": ("docker.sock", "volumes"),
    "K8S-SECRET-ENV": ("secretKeyRef", "env"),
}


@dataclass(frozen=True)
class Kustomize:
    """Patch files and, for each, the kustomization that applies it."""

    patches: dict[str, str] = field(default_factory=dict)

    def is_patch(self, path: str) -> bool:
        return path in self.patches


def missing(evidence: str | None) -> bool:
    """Whether a finding's evidence is about an absent field (not a value)."""
    return bool(evidence) and bool(_MISSING.search(evidence or ""))


def kustomize(view: TargetView) -> Kustomize:
    return _kustomize(view, tuple(project_files(view, _is_kustomization)))


def _is_kustomization(path: str) -> bool:
    return posixpath.basename(path) in KUSTOMIZATION


@cache
def _parsed(text: str) -> object:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe").load(text)
    except YAMLError:
        return None


def _kustomize(view: TargetView, files: tuple[str, ...]) -> Kustomize:
    patches: dict[str, str] = {}
    for path in files:
        try:
            data = _parsed(view.read_bytes(path).decode("utf-8", "replace"))
        except OSError:
            continue
        if not isinstance(data, dict):
            continue
        folder = posixpath.dirname(path)
        listed: list[object] = list(data.get("patchesStrategicMerge") or [])
        for item in data.get("patches") or []:
            listed.append(item.get("path") if isinstance(item, dict) else item)
        for item in listed:
            if isinstance(item, str) and item.endswith((".yaml", ".yml")) and "\n" not in item:
                patches[posixpath.normpath(posixpath.join(folder, item))] = path
    return Kustomize(patches)


def helm_chart(view: TargetView, path: str) -> str | None:
    """The chart folder when ``path`` is a Helm template, else ``None``."""
    parts = path.split("/")
    if "templates" not in parts[:-1]:
        return None
    at = len(parts) - 2 - parts[:-1][::-1].index("templates")
    chart = "/".join(parts[:at])
    marker = f"{chart}/Chart.yaml" if chart else "Chart.yaml"
    return chart if view.stat(marker) is not None else None


def values_key(template: str, rule_id: str) -> str | None:
    """The ``.Values`` key the template reads for the field ``rule_id`` is
    about: on the field's line or the line after it (``toYaml`` idiom)."""
    lines = template.splitlines()
    for name in RULE_FIELDS.get(rule_id, ()):
        for i, line in enumerate(lines):
            if name not in line:
                continue
            for candidate in (line, lines[i + 1] if i + 1 < len(lines) else ""):
                m = _VALUES.search(candidate)
                if m:
                    return ".Values" + m.group(1)
    return None


def helm_decision(view: TargetView, path: str, chart: str, rule_id: str) -> str:
    text = view.read_bytes(path).decode("utf-8", "replace")
    key = values_key(text, rule_id)
    values = f"{chart}/values.yaml" if chart else "values.yaml"
    fields = ", ".join(RULE_FIELDS.get(rule_id, ())[:1]) or "the field"
    if key is not None:
        return (
            f"{path} is a Helm template: set {key} in {values} (and in every values file you "
            f"deploy with) to fix {fields}, then render the chart again"
        )
    return (
        f"{path} is a Helm template that does not read {fields} from its values: add it to "
        f"the template (or expose it as a value in {values}), then render the chart again"
    )
