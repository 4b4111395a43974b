"""``cloudformation-hardening``: fix CloudFormation templates from the catalog.

A finding (Checkov's ``CKV_AWS_*`` on a CloudFormation template, or the
built-in detector's) names a resource; every catalog entry for that check
and resource type is applied to it:

* ``safe`` entries are applied;
* ``risk`` entries only when approved (parameter ``approve``: entry ids,
  check ids, or ``all``), otherwise the plan is ``needs_manual`` naming the
  risk;
* ``needs_manual`` entries never change anything: the plan names the
  decision.

A value computed by an intrinsic function, a guard (a bucket that serves a
website) or a property shape Jupiter does not rewrite also makes the plan
``needs_manual``, with one sentence saying where to look. Edits are byte
splices (:mod:`jupiter.plugins.cloudformation.splice`): everything outside
the edited spans stays byte-identical. The plan re-parses its own output,
checks that every applied entry now passes and that no logical id changed;
``validate`` then runs cfn-lint and a Checkov rescan (:mod:`.validate`).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jupiter.catalog import FixEntry
from jupiter.errors import ConflictError, InputError
from jupiter.models import FindingRecord
from jupiter.plans import Plan, Risk, WriteFile, sha256_bytes, unified_diff
from jupiter.plugins.base import Remediator, ValidationResult
from jupiter.plugins.cloudformation import CATEGORY
from jupiter.plugins.cloudformation import detect as cfn
from jupiter.plugins.cloudformation import entries as catalog
from jupiter.plugins.cloudformation import validate as gate
from jupiter.plugins.cloudformation.splice import Editor, Segment, Unaddressable, parse_path
from jupiter.plugins.cloudformation.template import Resource, Template, parse
from jupiter.plugins.kit import decode_text
from jupiter.targets.base import TargetView

__all__ = ["CfnParams", "CloudFormationHardening"]


class CfnParams(BaseModel):
    """Parameters of ``cloudformation-hardening``.

    * ``approve`` — ``risk`` fixes to apply: catalog entry ids
      (``cfn-s3-versioning``), Checkov ids (``CKV_AWS_21``) or ``all``;

    The gate's tools are found by :func:`jupiter.plugins.cloudformation.validate.tools`.
    """

    model_config = ConfigDict(extra="forbid")

    approve: list[str] = Field(default_factory=list)

    @field_validator("approve", mode="before")
    @classmethod
    def _commas(cls, value: object) -> object:
        """``--param cloudformation-hardening.approve=a,b`` gives one string."""
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value


def _rule_ids() -> frozenset[str]:
    return frozenset(r for e in catalog.entries() for r in e.checks.get("checkov", []))


class CloudFormationHardening(Remediator[CfnParams]):
    name: ClassVar[str] = "cloudformation-hardening"
    summary: ClassVar[str] = (
        "Fix CloudFormation templates (YAML and JSON) from the fix catalog: encryption, "
        "logging, public access, TLS; byte-preserving edits, cfn-lint and Checkov gate."
    )
    categories: ClassVar[frozenset[str]] = frozenset({CATEGORY})
    rule_ids: ClassVar[frozenset[str]] = _rule_ids()
    params_model: ClassVar[type[BaseModel]] = CfnParams

    def handles(self, finding: FindingRecord) -> bool:
        if finding.rule_id not in self.rule_ids:
            return False
        if finding.scanner == cfn.SCANNER:
            return True
        framework = str(finding.extra.get("check_type", "")).lower()
        if framework:
            return framework == "cloudformation"
        if finding.category == CATEGORY:
            return True
        path = (finding.location.path or "").lower()
        return path.endswith(cfn.SUFFIXES) and not path.endswith(".tf.json")

    def detect(self, view: TargetView, params: CfnParams | None = None) -> list[FindingRecord]:
        return cfn.scan(view).findings

    def survey(
        self, view: TargetView, params: CfnParams | None = None
    ) -> tuple[list[FindingRecord], list[str]]:
        result = cfn.scan(view)
        return result.findings, result.errors

    def plan(self, finding: FindingRecord, view: TargetView, params: CfnParams) -> Plan:
        p = params if isinstance(params, CfnParams) else CfnParams.model_validate(params or {})
        path = _path(finding, view)
        raw = view.read_bytes(path)
        text = decode_text(path, raw)
        template = parse(path, text)
        resource = _select(finding, template)
        if resource is None:
            raise ConflictError(
                f"{path} no longer holds the resource of finding {finding.rule_id} "
                f"({finding.extra.get('resource') or finding.identity or 'unknown'}); scan "
                "again and plan the new findings"
            )
        base = Plan(
            remediator=self.name,
            rule_id=finding.rule_id,
            severity=finding.severity,
            title=f"{finding.title.split(': AWS::')[0]}: {resource.type} {resource.logical_id} "
            f"({path})",
        )
        chosen = catalog.for_rule(finding.rule_id, resource.type)
        wanted = finding.extra.get("entry")
        if isinstance(wanted, str):
            chosen = [e for e in chosen if e.id == wanted] or chosen
        if not chosen:
            return base.model_copy(
                update={
                    "needs_manual": f"the fix catalog has no entry for {finding.rule_id} on "
                    f"{resource.type} {resource.logical_id}; fix it by hand"
                }
            )
        manual: list[str] = []
        applied: list[FixEntry] = []
        current = text
        for entry in chosen:
            t = parse(path, current)
            r = t.resource(resource.logical_id)
            assert r is not None
            reason = _refusal(entry, t, r, p)
            if reason is not None:
                if reason:
                    manual.append(reason)
                continue
            assert entry.path is not None
            editor = Editor(t)
            try:
                props = r.properties()
                segs = parse_path(entry.path)
                if props is None:
                    editor.set(r.node, [Segment("Properties", None), *segs], entry.value)
                else:
                    editor.set(props, segs, entry.value)
            except Unaddressable as exc:
                manual.append(f"{r.logical_id}: {exc}")
                continue
            after = editor.result()
            if after != current:
                current = after
                applied.append(entry)
        if manual:
            return base.model_copy(update={"needs_manual": "; ".join(manual)})
        if current == text:
            return base
        self._check_result(path, template, current, resource.logical_id, applied)
        gate.remember_original(sha256_bytes(raw), raw)
        risks = [f"{e.title}: {e.risk}" for e in applied if e.fix_class == "risk" and e.risk]
        return base.model_copy(
            update={
                "changes": [WriteFile(path=path, content=current, before_sha256=sha256_bytes(raw))],
                "diff": unified_diff(path, text, current),
                "risk": Risk(
                    change_kind="config",
                    disruption=bool(risks),
                    warnings=risks,
                    manual_steps=[
                        f"deploy the change set: aws cloudformation deploy --template-file "
                        f"{path} ... (review the change set: no resource is replaced)"
                    ],
                ),
            }
        )

    @staticmethod
    def _check_result(
        path: str, before: Template, text: str, logical_id: str, applied: list[FixEntry]
    ) -> None:
        """The edited text re-parses, keeps every logical id, changes nothing
        outside the fixed resource, and passes."""
        res = before.resource(logical_id)
        assert res is not None
        head = before.text[: res.key.start_mark.index]
        tail = before.text[res.node.end_mark.index :]
        if not (text.startswith(head) and text.endswith(tail)):
            raise InputError(f"{path}: the edit reached outside {logical_id}; not applied")
        after = parse(path, text)
        if [r.logical_id for r in after.resources] != [r.logical_id for r in before.resources]:
            raise InputError(f"{path}: the edit changed the template's resources; not applied")
        resource = after.resource(logical_id)
        assert resource is not None
        for entry in applied:
            bad = catalog.failing(entry, after, resource)
            if bad is not None:
                raise InputError(
                    f"{path}: {entry.id} still sees {entry.path} = {bad} on {logical_id} after "
                    "the edit; not applied"
                )

    def is_fixed(self, finding: FindingRecord, view: TargetView, params: CfnParams) -> bool:
        path = finding.location.path
        if not path or view.stat(path) is None:
            return not path or view.stat(path) is None
        try:
            template = parse(path, decode_text(path, view.read_bytes(path)))
        except InputError:
            return False
        resource = _select(finding, template)
        if resource is None:
            return False
        chosen = [
            e
            for e in catalog.for_rule(finding.rule_id, resource.type)
            if catalog.checkable(e) and e.fix_class != "needs_manual"
        ]
        wanted = finding.extra.get("entry")
        if isinstance(wanted, str):
            chosen = [e for e in chosen if e.id == wanted] or chosen
        return bool(chosen) and all(catalog.failing(e, template, resource) is None for e in chosen)

    def validate(self, plan: Plan, candidate: TargetView) -> list[ValidationResult]:
        cfn_lint, checkov = gate.tools()
        out: list[ValidationResult] = []
        for change in plan.changes:
            if not isinstance(change, WriteFile):
                continue
            after = candidate.read_bytes(change.path)
            try:
                parse(change.path, after.decode("utf-8"))
            except InputError as exc:
                out.append(ValidationResult("cfn-parse", "failed", str(exc)))
                continue
            before = gate.original(change.before_sha256 or "")
            resource = _resource_id(plan)
            target = (plan.rule_id, resource) if resource else None
            out.extend(gate.gate(change.path, before, after, target, cfn_lint, checkov))
        return out


def _resource_id(plan: Plan) -> str | None:
    """``Type.LogicalId`` from the plan's title (``...: Type LogicalId (path)``)."""
    head = plan.title.rsplit(" (", 1)[0]
    words = head.split()
    if len(words) >= 2 and words[-2].startswith("AWS::"):
        return f"{words[-2]}.{words[-1]}"
    return None


def _refusal(entry: FixEntry, t: Template, r: Resource, p: CfnParams) -> str | None:
    """Why a person must decide (a sentence), ``""`` when the entry has
    nothing to do on this resource, ``None`` when it may be applied."""
    if entry.fix_class == "needs_manual":
        return f"{entry.title} on {r.logical_id}: {entry.decision}"
    if not catalog.checkable(entry):
        return f"{entry.title} on {r.logical_id}: set {entry.path} by hand"
    if catalog.failing(entry, t, r) is None:
        name = catalog.computed(entry, r)
        if name is None:
            return ""
        return (
            f"{entry.path} of {r.logical_id} is computed by {name}: change the parameter, "
            f"condition or mapping it reads so that it is {entry.value!r}"
        )
    why = catalog.guard(entry, t, r)
    if why is not None:
        return why
    if entry.fix_class == "risk" and not _approved(entry, p):
        return (
            f"{entry.title} on {r.logical_id} is a risk fix ({entry.risk}); approve it with "
            f"--param cloudformation-hardening.approve={entry.id}"
        )
    return None


def _approved(entry: FixEntry, p: CfnParams) -> bool:
    wanted = {a.upper() for a in p.approve}
    return bool(wanted & {"ALL", entry.id.upper(), *(r.upper() for r in entry.rule_ids())})


def _path(finding: FindingRecord, view: TargetView) -> str:
    path = finding.location.path
    if not path:
        raise InputError(
            f"finding {finding.rule_id} has no file path; cloudformation-hardening needs the "
            "template's path relative to the target root"
        )
    if view.stat(path) is None:
        raise ConflictError(
            f"{path} named by finding {finding.rule_id} no longer exists on "
            f"{view.describe()}; scan again and plan the new findings"
        )
    return path


def _select(finding: FindingRecord, template: Template) -> Resource | None:
    if finding.identity and "/" in finding.identity:
        return template.resource(finding.identity.split("/", 1)[0])
    wanted = finding.extra.get("resource")
    if isinstance(wanted, str) and "." in wanted:
        hit = template.resource(wanted.rsplit(".", 1)[1])
        if hit is not None:
            return hit
    line = finding.location.start_line
    if line is None:
        return None
    return next((r for r in template.resources if r.line <= line <= r.last_line), None)
