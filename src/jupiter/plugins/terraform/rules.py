"""Catalog entries evaluated and fixed on one Terraform resource.

An entry's ``path`` is either

* ``a.b.attr`` — nested blocks ``a { b { attr = value } }`` of the resource
  (every ``a`` block when there are several: the scanner reads the first,
  a fixer secures them all), or
* ``companion:TYPE/a.attr`` — a companion resource of ``TYPE`` that points
  at this one through its ``bucket`` argument (AWS provider 4 split an S3
  bucket's settings into such resources); ``companion:TYPE/`` with a mapping
  as ``value`` sets several top-level arguments of the companion.

A value set by an expression (``var.x``, ``each.value``) or a block made by
``dynamic`` cannot be judged or edited here: the verdict is ``manual`` and
says where the value comes from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from jupiter.catalog import FixEntry
from jupiter.plugins.terraform import edit
from jupiter.plugins.terraform.hcl import Block, Expr, Resource, TfFile
from jupiter.plugins.terraform.providers import Unknown, Version, provider_major

State = Literal["pass", "fail", "manual"]
PROVIDERS = {"aws": "aws", "azure": "azurerm", "gcp": "google"}
COMPANION = "companion:"
#: In ``accepted``: the setting is out of scope while its outermost block is
#: absent (the scanner only judges it once that block exists).
NO_BLOCK = "no-block"

#: Entries that make a storage bucket or account private: on one that
#: serves a public website they would take the site down.
WEBSITE_GUARDED = frozenset(
    {
        "aws-s3-public-access-block",
        "aws-s3-acl-private",
        "gcp-storage-public-access-prevention",
        "gcp-storage-uniform-access",
        "azure-storage-no-public-blobs",
        "azure-storage-public-network",
    }
)


@dataclass
class Module:
    """The ``.tf`` files of one directory (one Terraform module).

    ``files`` holds the files read so far; ``rest`` reads the others when a
    question needs the whole module (a companion resource, the provider
    version), so a plan that edits one attribute reads one file."""

    dir: str
    files: dict[str, TfFile]
    lock: str | None = None
    rest: Callable[[], dict[str, TfFile]] | None = None
    _versions: dict[str, Version | Unknown] = field(default_factory=dict)

    def all_files(self) -> dict[str, TfFile]:
        if self.rest is not None:
            loaded = self.rest()
            self.rest = None
            for path, tf in loaded.items():
                self.files.setdefault(path, tf)
        return self.files

    def file(self, path: str) -> TfFile:
        if path not in self.files:
            self.all_files()
        return self.files[path]

    def resources(self) -> list[Resource]:
        return [r for tf in self.all_files().values() for r in tf.resources()]

    def version(self, provider: str) -> Version | Unknown:
        if provider not in self._versions:
            self._versions[provider] = provider_major(
                provider, list(self.all_files().values()), self.lock, self.dir
            )
        return self._versions[provider]

    def companions(self, res: Resource, kind: str) -> list[Resource]:
        prefix = f"{res.type}.{res.name}."
        out = []
        for other in self.resources():
            if other.type != kind:
                continue
            link = other.block.attributes().get("bucket")
            if (
                link is not None
                and isinstance(link.value, Expr)
                and link.value.text.startswith(prefix)
            ):
                out.append(other)
        return out


@dataclass
class Verdict:
    state: State
    reason: str = ""


def version_matches(spec: str | None, major: int) -> bool:
    if not spec:
        return True
    for clause in spec.split(","):
        clause = clause.strip()
        for op in (">=", "<=", ">", "<", "=="):
            if clause.startswith(op):
                n = int(clause[len(op) :].strip())
                ok = {
                    ">=": major >= n,
                    "<=": major <= n,
                    ">": major > n,
                    "<": major < n,
                    "==": major == n,
                }[op]
                if not ok:
                    return False
                break
    return True


def select(
    entries: tuple[FixEntry, ...], res: Resource, module: Module
) -> tuple[list[FixEntry], str | None]:
    """The entries that apply to ``res`` in ``module`` (by resource type and
    provider version), or why that cannot be known."""
    typed = [e for e in entries if e.framework == "terraform" and res.type in e.resources]
    if not any(e.provider_versions for e in typed):
        return typed, None
    provider = PROVIDERS.get(typed[0].provider or "", "aws")
    version = module.version(provider)
    if isinstance(version, Unknown):
        return [], f"{version.reason}; the fix differs by provider version"
    return [e for e in typed if version_matches(e.provider_versions, version.major)], None


def _same(want: Any, have: Any) -> bool:
    if want == "*":
        return True
    if isinstance(want, str) and want.startswith("!="):
        return not _same(want[2:], have)
    if isinstance(want, str) and want[:2] in (">=", "<="):
        if isinstance(have, bool) or not isinstance(have, int | float | str):
            return False
        try:
            number = float(have.rstrip("s") if isinstance(have, str) else have)
        except ValueError:
            return False
        bound = float(want[2:].rstrip("s"))  # durations such as "7776000s"
        return number >= bound if want.startswith(">=") else number <= bound
    if isinstance(want, bool) or isinstance(have, bool):
        return str(want).lower() == str(have).lower()
    if isinstance(want, str) and isinstance(have, str):
        return want.lower() == have.lower()
    if isinstance(want, list) or isinstance(have, list):
        return bool(want == have)
    return str(want).lower() == str(have).lower()


def judged(entry: FixEntry) -> bool:
    """Whether the detector can tell a secure value from an insecure one:
    every fix can; a ``needs_manual`` entry only when it lists ``accepted``
    values (``"*"``: any value, as long as one is set)."""
    return entry.path is not None and (entry.fix_class != "needs_manual" or bool(entry.accepted))


def accepts(entry: FixEntry, value: Any, present: bool) -> bool:
    allowed = entry.accepted if entry.accepted is not None else [entry.value]
    allowed = [a for a in allowed if a != NO_BLOCK]
    if not present:
        return None in allowed
    return any(a is not None and _same(a, value) for a in allowed)


def _split(entry: FixEntry) -> tuple[str | None, list[str]]:
    path = entry.path or ""
    if path.startswith(COMPANION):
        kind, _, rest = path[len(COMPANION) :].partition("/")
        return kind, rest.split(".") if rest else [""]
    return None, path.split(".")


def _judge(entry: FixEntry, block: Block, segs: list[str], where: str, top: bool = True) -> Verdict:
    if segs == [""]:
        attrs = block.attributes()
        for name in entry.value or {}:
            sub = entry.model_copy(update={"value": entry.value[name], "accepted": None})
            if isinstance(entry.value[name], dict) and not block.blocks(name):
                return Verdict("fail")
            verdict = _judge(sub, block, [name], where, False)
            if verdict.state != "pass":
                return verdict
        _ = attrs
        return Verdict("pass")
    if len(segs) == 1 and isinstance(entry.value, dict) and segs[0]:
        # a block with these contents (nested mappings are nested blocks);
        # accepted ["*"]: any such block will do (the user's own rules)
        children = block.blocks(segs[0])
        if not children:
            no_block = top and entry.accepted is not None and NO_BLOCK in entry.accepted
            return Verdict("pass" if no_block else "fail")
        if entry.accepted == ["*"]:
            return Verdict("pass")
        for child in children:
            verdict = _judge(entry, child, [""], f"{where}.{segs[0]}", False)
            if verdict.state != "pass":
                return verdict
        return Verdict("pass")
    if len(segs) == 1:
        attr = block.attributes().get(segs[0])
        if attr is not None and isinstance(attr.value, Expr):
            return Verdict(
                "manual",
                f"{where}.{segs[0]} is set by the expression `{attr.value.text}`; set the "
                "secure value where that expression gets its value",
            )
        ok = accepts(entry, attr.value if attr else None, attr is not None)
        return Verdict("pass" if ok else "fail")
    if block.dynamic(segs[0]):
        return Verdict(
            "manual",
            f"{where}.{segs[0]} blocks are generated by a `dynamic` block; set "
            f"{'.'.join(segs[1:])} in its content or in the collection it iterates",
        )
    children = block.blocks(segs[0])
    if not children:
        no_block = top and entry.accepted is not None and NO_BLOCK in entry.accepted
        return Verdict("pass" if no_block or accepts(entry, None, False) else "fail")
    for child in children:
        verdict = _judge(entry, child, segs[1:], f"{where}.{segs[0]}", False)
        if verdict.state != "pass":
            return verdict
    return Verdict("pass")


def evaluate(entry: FixEntry, res: Resource, module: Module) -> Verdict:
    """Whether ``res`` satisfies ``entry`` (its path has an accepted value)."""
    if entry.path is None:
        return Verdict("manual", entry.decision or "no attribute path to check")
    kind, segs = _split(entry)
    if kind is None:
        return _judge(entry, res.block, segs, res.address)
    found = module.companions(res, kind)
    if not found:
        return Verdict("fail")
    if entry.accepted == ["*"]:
        return Verdict("pass")  # the user's own companion stands
    for comp in found:
        verdict = _judge(entry, comp.block, segs, comp.address)
        if verdict.state != "pass":
            return verdict
    return Verdict("pass")


def is_website(res: Resource, module: Module) -> bool:
    """Whether a bucket or storage account serves a public website."""
    if res.type == "aws_s3_bucket":
        return bool(res.block.blocks("website")) or bool(
            module.companions(res, "aws_s3_bucket_website_configuration")
        )
    if res.type == "google_storage_bucket":
        return bool(res.block.blocks("website"))
    if res.type == "azurerm_storage_account":
        return bool(res.block.blocks("static_website"))
    return False


def _fix_in(entry: FixEntry, block: Block, segs: list[str], spans: list[edit.Span]) -> str | None:
    """Spans that make ``block`` satisfy ``entry``; a reason when it cannot."""
    if segs == [""]:
        lines = []
        attrs = block.attributes()
        unit = edit.indent_unit(block)
        indent = edit.attribute_line(block, "x", "").split("x", 1)[0]
        for name, value in (entry.value or {}).items():
            attr = attrs.get(name)
            if isinstance(value, dict):
                if block.blocks(name):
                    sub = entry.model_copy(update={"value": value, "accepted": None})
                    for child in block.blocks(name):
                        reason = _fix_in(sub, child, [""], spans)
                        if reason:
                            return reason
                else:
                    lines += edit.nested_text(indent, [name, ""], value, unit)
                continue
            if attr is None:
                lines.append(edit.attribute_line(block, name, _render(value)))
            elif isinstance(attr.value, Expr):
                return f"{name} is set by the expression `{attr.value.text}`"
            elif not _same(value, attr.value):
                spans.append(edit.set_value(attr, value))
        if lines:
            spans.append(edit.insert_lines(block, lines))
        return None
    if len(segs) == 1 and isinstance(entry.value, dict) and segs[0]:
        children = block.blocks(segs[0])
        if not children:
            indent = edit.attribute_line(block, "x", "").split("x", 1)[0]
            lines = edit.nested_text(indent, [segs[0], ""], entry.value, edit.indent_unit(block))
            spans.append(edit.insert_lines(block, lines))
            return None
        for child in children:
            reason = _fix_in(entry, child, [""], spans)
            if reason:
                return reason
        return None
    if len(segs) == 1:
        attr = block.attributes().get(segs[0])
        if attr is None:
            spans.append(
                edit.insert_lines(
                    block, [edit.attribute_line(block, segs[0], _render(entry.value))]
                )
            )
        elif isinstance(attr.value, Expr):
            return f"{segs[0]} is set by the expression `{attr.value.text}`"
        elif not accepts(entry, attr.value, True):
            spans.append(edit.set_value(attr, entry.value))
        return None
    if block.dynamic(segs[0]):
        return f"{segs[0]} blocks are generated by a `dynamic` block"
    children = block.blocks(segs[0])
    if not children:
        indent = edit.attribute_line(block, "x", "").split("x", 1)[0]
        lines = edit.nested_text(indent, segs, entry.value, edit.indent_unit(block))
        spans.append(edit.insert_lines(block, lines))
        return None
    for child in children:
        reason = _fix_in(entry, child, segs[1:], spans)
        if reason:
            return reason
    return None


def _render(value: Any) -> str:
    from jupiter.plugins.terraform.hcl import render

    return render(value)


@dataclass
class Fix:
    spans: dict[str, list[edit.Span]] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    """Addresses of companion resources the fix creates."""


def fix(entry: FixEntry, res: Resource, module: Module, out: Fix) -> str | None:
    """Add to ``out`` the spans that make ``res`` satisfy ``entry``; the
    reason a person must do it instead, when the fixer cannot."""
    if entry.id in WEBSITE_GUARDED and is_website(res, module):
        return (
            f"{res.address} serves a public website; making it private would take the site "
            "down: decide whether the site moves behind a CDN with origin access "
            f"(then apply {entry.id}) or stays public"
        )
    kind, segs = _split(entry)
    if kind is None:
        spans: list[edit.Span] = []
        reason = _fix_in(entry, res.block, segs, spans)
        if reason:
            return f"{res.address}: {reason}; set it there by hand"
        out.spans.setdefault(res.path, []).extend(spans)
        return None
    found = module.companions(res, kind)
    for comp in found:
        spans = []
        reason = _fix_in(entry, comp.block, segs, spans)
        if reason:
            return f"{comp.address}: {reason}; set it there by hand"
        out.spans.setdefault(comp.path, []).extend(spans)
    if found:
        return None
    if res.meta():
        return (
            f"{res.address} uses {' and '.join(res.meta())}: the companion {kind} needs the "
            "same meta-argument and an index into the bucket; add it by hand"
        )
    taken = {r.address for r in module.resources()} | set(out.added)
    name = res.name
    suffix = 1
    while f"{kind}.{name}" in taken:
        suffix += 1
        name = f"{res.name}_{suffix}"
    unit = edit.indent_unit(res.block)
    indent = res.block.indent()
    body = [f"{indent}{unit}bucket = {res.type}.{res.name}.id"]
    if segs == [""]:
        flat = {k: v for k, v in entry.value.items() if not isinstance(v, dict)}
        width = max([len("bucket"), *(len(k) for k in flat)])
        body = [f"{indent}{unit}{'bucket'.ljust(width)} = {res.type}.{res.name}.id"]
        body += [f"{indent}{unit}{k.ljust(width)} = {_render(v)}" for k, v in flat.items()]
        nested = {k: v for k, v in entry.value.items() if isinstance(v, dict)}
        if nested:
            body += edit.nested_text(indent + unit, [""], nested, unit)
    else:
        body += edit.nested_text(indent + unit, segs, entry.value, unit)
    text = "\n\n" + "\n".join([f'{indent}resource "{kind}" "{name}" {{', *body, f"{indent}}}"])
    end = res.block.node.end_byte
    out.spans.setdefault(res.path, []).append(edit.Span(end, end, text.encode()))
    out.added.append(f"{kind}.{name}")
    return None
