"""``terraform-iac``: fix Terraform resources from the fix catalog, in place.

Handles every Checkov id of the catalog's Terraform entries, for findings
in ``.tf`` files: the built-in detector's (:mod:`.detect`) and Checkov's
(JSON or SARIF, located by ``resource`` address or line). One plan fixes
one finding on one resource, by byte-span edits of the syntax tree:

* ``safe`` entries are planned and applied;
* ``risk`` entries are applied only when approved
  (``-p terraform-iac.approve=ENTRY_OR_CHECK_ID,...`` or ``approve=risk``
  for all); otherwise the plan is ``needs_manual`` naming the risk;
* ``needs_manual`` entries plan nothing and name the decision.

Every plan is gated before it is offered: the edited files re-parse, the
resource addresses are unchanged but for added companions, every byte
outside the edited spans is unchanged, the target check passes and no
catalog check that passed on the touched files now fails. The Checkov
rescan of the whole project is batched per run (:mod:`.gate`);
``terraform validate`` needs provider plugins and is not run here.
"""

from __future__ import annotations

import posixpath
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jupiter.catalog import FixEntry, load_catalog
from jupiter.errors import ConflictError, InputError
from jupiter.models import FindingRecord
from jupiter.plans import Plan, Risk, file_edits
from jupiter.plugins.base import Remediator, RunGate, ValidationResult
from jupiter.plugins.terraform import CATEGORY
from jupiter.plugins.terraform import detect as tf_detect
from jupiter.plugins.terraform.edit import Span, apply
from jupiter.plugins.terraform.hcl import Resource, parse
from jupiter.plugins.terraform.rules import Fix, Module, evaluate, fix, judged, select
from jupiter.targets.base import Target, TargetView


class TerraformParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: list[str] = Field(default_factory=list)
    """Catalog entry ids or Checkov ids whose ``risk`` fixes may be applied;
    ``risk`` approves every one."""

    @field_validator("approve", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        # `-p terraform-iac.approve=risk` arrives as one string.
        return [v for v in value.split(",") if v.strip()] if isinstance(value, str) else value


class TerraformIac(Remediator[TerraformParams]):
    name: ClassVar[str] = "terraform-iac"
    summary: ClassVar[str] = (
        "Fix Terraform resources (AWS, Azure, Google Cloud) from the fix catalog by byte-exact "
        "edits; risky fixes need approval, the rest names the decision a person must make."
    )
    categories: ClassVar[frozenset[str]] = frozenset({CATEGORY})
    params_model: ClassVar[type[BaseModel]] = TerraformParams

    @property
    def rule_ids(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset(r for e in tf_detect.entries() for r in e.checks.get("checkov", []))

    def handles(self, finding: FindingRecord) -> bool:
        path = finding.location.path or ""
        return path.endswith(".tf") and finding.rule_id in self.rule_ids

    def detect(
        self, view: TargetView, params: TerraformParams | None = None
    ) -> list[FindingRecord]:
        return tf_detect.scan(view).findings

    def survey(
        self, view: TargetView, params: TerraformParams | None = None
    ) -> tuple[list[FindingRecord], list[str]]:
        result = tf_detect.scan(view)
        return result.findings, result.errors

    def plan(self, finding: FindingRecord, view: TargetView, params: TerraformParams) -> Plan:
        path = finding.location.path or ""
        if not path or view.stat(path) is None:
            raise ConflictError(
                f"{path or 'a finding without a path'} named by {finding.rule_id} does not exist "
                f"on {view.describe()}; run detect again and plan the new findings"
            )
        base = Plan(
            remediator=self.name,
            rule_id=finding.rule_id,
            severity=finding.severity,
            title=f"{finding.title} ({path})",
        )
        wanted = _wanted_address(finding)
        if wanted is not None and wanted.startswith("module."):
            module_name = wanted.split(".")[1]
            return base.model_copy(
                update={
                    "needs_manual": f"{wanted} is created by module {module_name!r}: set the "
                    "secure value through that module's inputs (or fix the module's source)"
                }
            )
        module = tf_detect.load_module(view, posixpath.dirname(path), first=path)
        res = _locate(module, path, finding, wanted)
        chosen, why = select(load_catalog().for_rule(finding.rule_id), res, module)
        if why is not None:
            return base.model_copy(update={"needs_manual": f"{res.address}: {why}"})
        if not chosen:
            return base.model_copy(
                update={
                    "needs_manual": f"{res.address}: the catalog has no fix of "
                    f"{finding.rule_id} for {res.type}; fix it by hand"
                }
            )
        manual = [e for e in chosen if e.fix_class == "needs_manual"]
        if manual:
            return base.model_copy(update={"needs_manual": f"{res.address}: {manual[0].decision}"})
        todo = [e for e in chosen if evaluate(e, res, module).state != "pass"]
        if not todo:
            return base  # already fixed
        unapproved = [e for e in todo if e.fix_class == "risk" and not _approved(e, params)]
        if unapproved:
            e = unapproved[0]
            return base.model_copy(
                update={
                    "needs_manual": f"{res.address}: approval needed, {e.risk} (approve with "
                    f"-p terraform-iac.approve={e.id})"
                }
            )
        out = Fix()
        for entry in todo:
            reason = fix(entry, res, module, out)
            if reason:
                return base.model_copy(update={"needs_manual": reason})
        edits = []
        for file_path, spans in out.spans.items():
            before = module.file(file_path).source
            after = apply(before, _newlines(before, spans))
            refused = _gate(module, file_path, after, out.added, todo, res.address)
            if refused:
                return base.model_copy(update={"needs_manual": refused})
            edits.append((file_path, before.decode("utf-8"), after.decode("utf-8")))
        changes, diff = file_edits(view, edits)
        risks = [e.risk for e in todo if e.risk]
        return base.model_copy(
            update={
                "changes": changes,
                "diff": diff,
                "risk": Risk(
                    change_kind="config",
                    disruption=bool(risks),
                    warnings=risks,
                    manual_steps=[
                        "run `terraform plan` and review it before `terraform apply` (Jupiter "
                        "cannot run `terraform validate` without provider plugins)"
                    ],
                ),
            }
        )

    def is_fixed(self, finding: FindingRecord, view: TargetView, params: TerraformParams) -> bool:
        path = finding.location.path or ""
        if not path or view.stat(path) is None:
            return False
        try:
            module = tf_detect.load_module(view, posixpath.dirname(path), first=path)
            res = _locate(module, path, finding, _wanted_address(finding))
        except (InputError, ConflictError):
            return False
        chosen, why = select(load_catalog().for_rule(finding.rule_id), res, module)
        if why is not None or not chosen:
            return False
        return all(evaluate(e, res, module).state == "pass" for e in chosen)

    def run_gate(self, target: Target) -> RunGate | None:
        """Checkov's full rescan around the run, on a local tree (Checkov
        reads files: an SSH target has none here to read)."""
        from jupiter.plugins.terraform.gate import CheckovRunGate, find_checkov
        from jupiter.targets.local import LocalTarget

        if not isinstance(target, LocalTarget):
            return None
        return CheckovRunGate(target.root, find_checkov())

    def validate(self, plan: Plan, candidate: TargetView) -> list[ValidationResult]:
        """Re-parse every written file of the candidate."""
        problems = []
        for path in plan.touched_paths():
            try:
                parse(path, candidate.read_bytes(path))
            except InputError as exc:
                problems.append(str(exc))
        if problems:
            return [ValidationResult("hcl-parse", "failed", "; ".join(problems))]
        return [
            ValidationResult(
                "hcl-parse",
                "passed",
                f"{len(plan.touched_paths())} file(s) re-parse; `terraform validate` is not run "
                "(it needs provider plugins)",
            )
        ]


def _newlines(source: bytes, spans: list[Span]) -> list[Span]:
    """New lines in the file's own line ending (a CRLF file stays CRLF)."""
    if b"\r\n" not in source:
        return spans
    return [
        Span(s.start, s.end, s.text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")) for s in spans
    ]


def _approved(entry: FixEntry, params: TerraformParams) -> bool:
    names = {a.strip().lower() for a in params.approve}
    return bool(
        "risk" in names or entry.id in names or any(r.lower() in names for r in entry.rule_ids())
    )


def _wanted_address(finding: FindingRecord) -> str | None:
    if finding.identity:
        return finding.identity
    resource = finding.extra.get("resource")
    return resource if isinstance(resource, str) and resource else None


def _locate(module: Module, path: str, finding: FindingRecord, wanted: str | None) -> Resource:
    resources = module.file(path).resources()
    if wanted is not None:
        # Checkov names an instance of a counted resource `type.name[0]`/`["k"]`.
        base_address = wanted.split("[", 1)[0]
        for res in resources:
            if res.address == base_address:
                return res
    line = finding.location.start_line
    if line is not None:
        for res in resources:
            if res.block.start_line <= line <= res.block.end_line:
                return res
    raise ConflictError(
        f"{path} no longer holds {wanted or f'a resource at line {line}'} named by finding "
        f"{finding.rule_id}; run detect again and plan the new findings"
    )


def _gate(
    module: Module,
    path: str,
    after: bytes,
    added: list[str],
    todo: list[FixEntry],
    address: str,
) -> str | None:
    """Why a plan must not be offered: its result does not parse, renames or
    drops a resource, does not satisfy its entries, or makes a catalog check
    that passed fail (then a person fixes both together). ``None``: it may."""
    old = module.file(path)
    try:
        new = parse(path, after)
    except InputError as exc:
        return f"the edit for {address} would not parse ({exc}); fix it by hand"
    old_addr = sorted(r.address for r in old.resources())
    new_addr = sorted(r.address for r in new.resources())
    if sorted(a for a in new_addr if a not in added) != old_addr:
        return f"{path}: the edit for {address} would change resource addresses; fix it by hand"
    after_module = Module(
        module.dir, {path: new}, module.lock, lambda: {**module.all_files(), path: new}
    )
    index = tf_detect.by_type()
    after_by_addr = {r.address: r for r in new.resources()}
    for res in old.resources():
        twin = after_by_addr[res.address]
        for entry in index.get(res.type, []):
            if not judged(entry):
                continue
            if (
                evaluate(entry, res, module).state == "pass"
                and evaluate(entry, twin, after_module).state != "pass"
            ):
                return (
                    f"fixing {address} this way would make {entry.rule_ids()[0]} "
                    f"({entry.id}) fail on {res.address}; fix both together by hand"
                )
    if address in after_by_addr:
        for entry in todo:
            if evaluate(entry, after_by_addr[address], after_module).state != "pass":
                return f"{path}: the edit does not satisfy {entry.id} on {address}; fix it by hand"
    return None
