"""``kubernetes-pod-security``: harden pod and container security settings
in Kubernetes manifests, in place.

Handles the built-in ``K8S-*`` rules of :mod:`jupiter.plugins.kubernetes.detect`
and the Checkov checks that mean the same (``CKV_K8S_16``, ``_20``, ``_23``
...). A built-in finding names one container (its ``identity``); a Checkov
finding names a whole resource (``extra["resource"]`` = ``Kind.ns.name``,
or the line range of the document), so its plan fixes every container of
that resource, and it counts as fixed when the built-in detector no longer
reports the matching rule on that resource. When some of those containers
need a human, the whole plan is ``needs_manual`` (a partial fix would fail
verification); the fixable containers are fixed through their own findings.

Edits keep comments, key order, quotes, ``---`` separators and every other
document byte for byte (see :mod:`jupiter.plugins.kubernetes.parse`). Settings that
need a human decision (probes, resources, namespace, image pins,
read-only root filesystem) are ``needs_manual`` unless a parameter supplies
the value (:class:`K8sParams`). Validation re-parses the candidate and
checks the securityContext combinations the API server rejects (kubectl
cannot check without a cluster). A manifest that is not valid YAML (duplicate
keys, tabs) makes ``plan`` raise :class:`InputError` naming file and line;
``detect`` skips such files (:func:`jupiter.plugins.kubernetes.detect.scan` lists them).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ValidationError

from jupiter.errors import ConflictError, InputError
from jupiter.models import Category, FindingRecord
from jupiter.plans import Plan, Risk, WriteFile, sha256_bytes, unified_diff
from jupiter.plugins.base import Remediator, ValidationResult
from jupiter.plugins.kit import keep_line_endings
from jupiter.plugins.kubernetes import detect as k8s
from jupiter.plugins.kubernetes import layouts
from jupiter.plugins.kubernetes import parse as k8s_yaml
from jupiter.plugins.kubernetes.fixes import FIXERS, Edit, K8sParams, api_violations
from jupiter.plugins.kubernetes.fixes_extra import FIXERS as EXTRA_FIXERS
from jupiter.targets.base import TargetView

__all__ = ["K8sParams", "KubernetesPodSecurity"]


class KubernetesPodSecurity(Remediator[K8sParams]):
    name: ClassVar[str] = "kubernetes-pod-security"
    summary: ClassVar[str] = (
        "Harden Kubernetes workload manifests (privileged, privilege escalation, root, "
        "capabilities, seccomp, service account tokens) in place, keeping comments and layout."
    )
    categories: ClassVar[frozenset[Category]] = frozenset({Category.IAC_KUBERNETES})
    rule_ids: ClassVar[frozenset[str]] = k8s.RULE_IDS
    params_model: ClassVar[type[BaseModel]] = K8sParams

    def parse_params(self, raw: dict[str, object] | None) -> K8sParams:
        return _params(raw)

    def detect(self, view: TargetView, params: K8sParams | None = None) -> list[FindingRecord]:
        """Built-in findings of every parseable manifest (params do not change them)."""
        return k8s.check(view)

    def survey(
        self, view: TargetView, params: K8sParams | None = None
    ) -> tuple[list[FindingRecord], list[str]]:
        result = k8s.scan(view)
        return result.findings, [str(e) for e in result.errors]

    def plan(self, finding: FindingRecord, view: TargetView, params: K8sParams) -> Plan:
        p = _params(params)
        rule = _rule(finding)
        path = _path(finding, view)
        outside = _elsewhere(finding, view, path, rule)
        if outside is not None:
            return Plan(
                remediator=self.name,
                rule_id=finding.rule_id,
                severity=finding.severity,
                title=f"{rule.title} ({path})",
                needs_manual=outside,
            )
        raw = view.read_bytes(path)  # read once: the plan's precondition is these bytes
        chosen, container = _select(finding, k8s.parse_resources(path, raw)[1])
        if not chosen:
            raise ConflictError(
                f"{path} no longer holds the resource of finding {finding.rule_id} "
                f"({finding.identity or finding.extra.get('resource') or 'unknown'}); run "
                "detect again and plan the new findings"
            )
        base = Plan(
            remediator=self.name,
            rule_id=finding.rule_id,
            severity=finding.severity,
            title=f"{rule.title} ({path})",
        )
        if not any(
            rule.check(r, t) is not None
            for r in chosen
            for t in k8s.targets(r, rule)
            if container is None or (t is not None and t.name == container)
        ):
            return base  # already fixed: no need for a parse we may edit
        docs, resources = k8s.parse_resources(path, raw, fresh={r.doc.index for r in chosen})
        chosen, container = _select(finding, resources)
        edit = Edit(p)
        changed = False
        for resource in chosen:
            edit.changed = False
            for target in k8s.targets(resource, rule):
                if container is not None and (target is None or target.name != container):
                    continue
                if rule.check(resource, target) is not None:  # fixers run on failures only
                    {**FIXERS, **EXTRA_FIXERS}[rule.rule_id](edit, resource, target)
            resource.doc.changed |= edit.changed
            changed |= edit.changed
        if edit.manual:
            # A partial fix (some containers need a human) would fail
            # verification and be rolled back; the fixable containers are
            # fixed through their own built-in findings.
            return base.model_copy(update={"needs_manual": "; ".join(edit.manual)})
        if not changed:
            return base
        after = keep_line_endings(raw.decode("utf-8"), k8s_yaml.dump(docs))
        risk = Risk(
            change_kind="config",
            disruption=edit.disruption,
            warnings=edit.warnings,
            manual_steps=[
                f"roll the change out: kubectl apply -f {path} (or "
                "let your GitOps controller sync it); the pods are recreated"
            ],
        )
        return base.model_copy(
            update={
                "changes": [WriteFile(path=path, content=after, before_sha256=sha256_bytes(raw))],
                "diff": unified_diff(path, raw.decode("utf-8"), after),
                "risk": risk,
            }
        )

    def is_fixed(self, finding: FindingRecord, view: TargetView, params: K8sParams) -> bool:
        """Fixed when the built-in rule no longer fires on the finding's
        container (built-in findings) or resource (Checkov findings)."""
        rule = k8s.rule_for(finding.rule_id)
        if rule is None or not finding.location.path:
            return super().is_fixed(finding, view, params)
        if view.stat(finding.location.path) is None:
            return True
        try:
            _, resources = k8s.load_resources(view, finding.location.path)
        except InputError:
            return False
        chosen, container = _select(finding, resources)
        for resource in chosen:
            for record in k8s.check_resource(resource, rule):
                if container is None or record.extra.get("container") == container:
                    return False
        return True

    def validate(self, plan: Plan, candidate: TargetView) -> list[ValidationResult]:
        """Re-parse every written manifest and check the combinations the API
        server rejects (no cluster is needed, so this never skips)."""
        problems: list[str] = []
        for path in plan.touched_paths():
            try:
                _, resources = k8s.load_resources(candidate, path)
            except InputError as exc:
                problems.append(str(exc))
                continue
            except FileNotFoundError:
                continue
            for resource in resources:
                problems.extend(f"{path}: {v}" for v in api_violations(resource))
        if problems:
            return [ValidationResult("k8s-api-rules", "failed", "; ".join(problems))]
        return [
            ValidationResult(
                "k8s-api-rules",
                "passed",
                f"{len(plan.touched_paths())} manifest(s) parse and pass "
                "the API server's securityContext rules",
            )
        ]


def _params(raw: object) -> K8sParams:
    if isinstance(raw, K8sParams):
        return raw
    data = raw.model_dump() if isinstance(raw, BaseModel) else dict(raw or {})  # type: ignore[call-overload]
    try:
        return K8sParams.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "parameters"
        raise InputError(
            f"kubernetes-pod-security parameter {where}: {err['msg']}; see K8sParams for the "
            "accepted values"
        ) from None


def _rule(finding: FindingRecord) -> k8s.Rule:
    rule = k8s.rule_for(finding.rule_id)
    if rule is None:
        raise InputError(
            f"kubernetes-pod-security cannot plan rule {finding.rule_id!r}; it handles "
            f"{', '.join(sorted(k8s.RULE_IDS))}"
        )
    return rule


def _path(finding: FindingRecord, view: TargetView) -> str:
    path = finding.location.path
    if not path:
        raise InputError(
            f"finding {finding.rule_id} has no file path; kubernetes-pod-security needs the "
            "manifest's path relative to the target root"
        )
    if view.stat(path) is None:
        raise ConflictError(
            f"{path} named by finding {finding.rule_id} no longer exists on "
            f"{view.describe()}; run detect again and plan the new findings"
        )
    return path


def _elsewhere(finding: FindingRecord, view: TargetView, path: str, rule: k8s.Rule) -> str | None:
    """Why the fix does not belong in ``path``: a Helm template (the values
    key decides), or a kustomize patch that does not set the field (its base
    does). ``None`` when ``path`` is where the field is produced."""
    chart = layouts.helm_chart(view, path)
    if chart is not None:
        return layouts.helm_decision(view, path, chart, rule.rule_id)
    patches = layouts.kustomize(view)
    if not patches.is_patch(path):
        return None
    try:
        _, resources = k8s.load_resources(view, path)
    except InputError:
        return None  # plan reports the parse error itself
    chosen, container = _select(finding, resources)
    records = [
        r
        for res in chosen
        for r in k8s.check_resource(res, rule)
        if container is None or r.extra.get("container") == container
    ]
    if not records or any(not layouts.missing(r.evidence) for r in records):
        return None
    names = ", ".join(sorted({f"{r.kind} {r.name}" for r in chosen}))
    return (
        f"{path} is a kustomize patch ({patches.patches[path]}) that does not set what "
        f"{rule.rule_id} looks at for {names}: the field comes from the base, where "
        "Jupiter's own scan finds and fixes it (scanning a patch alone, without "
        "kustomize build, reports fields the base sets)"
    )


def _select(
    finding: FindingRecord, resources: list[k8s.Resource]
) -> tuple[list[k8s.Resource], str | None]:
    """The resources a finding is about, and its container when it names one."""
    if finding.identity and finding.identity.count("/") in (1, 2):
        kind, name, *rest = finding.identity.split("/")
        hits = [r for r in resources if r.kind == kind and r.name == name]
        return hits, rest[0] if rest else None
    wanted = finding.extra.get("resource")
    if isinstance(wanted, str):
        hits = [r for r in resources if r.checkov_id == wanted]
        if hits:
            return hits, None
    line = finding.location.start_line
    if line is None:
        return [], None
    return [r for r in resources if r.doc.first_line <= line <= r.doc.last_line()], None
