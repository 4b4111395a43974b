"""libcst rewrites, one per Bandit rule, applied to the calls on one line.

Each rewrite receives the call (and the names the module imports) and
returns the new call, or raises :class:`ManualFix` with the decision a
person must make. Formatting and comments outside the rewritten call stay as
they were; imports are added only when missing and removed only when a
rewrite left them unused.
"""

from __future__ import annotations

import ast
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import MetadataWrapper, PositionProvider

from jupiter.plugins.python_security import context
from jupiter.plugins.python_security.cstargs import drop_kw, kw, list_expr, literal, set_kw, target
from jupiter.plugins.python_security.detect import DEFUSED, XML_CALLS, Names
from jupiter.plugins.python_security.imports import add_imports, remove_unused

#: Characters that make a command string mean more to a shell than its words.
_SHELL_SYNTAX = set("|&;<>()$`\\\"'*?[]#~=%{}!\n\t")


class ManualFix(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Edit:
    """What a rewrite needs besides the call: imports to add, names whose
    imports may now be unused, and statements to insert after the call's."""

    imports: list[tuple[str, str | None]] = field(default_factory=list)
    maybe_unused: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class Options:
    timeout: float = 30.0
    ca_bundle: str | None = None


Rewrite = Callable[[cst.Call, "Ctx"], cst.BaseExpression]


@dataclass
class Ctx:
    names: Names
    tree: ast.Module
    line: int
    options: Options
    edit: Edit
    source: str = ""

    def qual(self, node: cst.BaseExpression) -> str | None:
        full = get_full_name_for_node(node)
        if full is None:
            return None
        head, _, rest = full.partition(".")
        base = self.names.alias.get(head)
        if base is None:
            return None
        return f"{base}.{rest}" if rest else base

    def local_name(self, module: str) -> str | None:
        """The name ``module`` is bound to in this module, if it is."""
        for local, qual in self.names.alias.items():
            if qual == module:
                return local
        return None

    def reference(self, module: str, attr: str) -> cst.BaseExpression:
        """``module.attr`` as this module can spell it, importing if needed."""
        local = self.local_name(module)
        if local is None:
            self.edit.imports.append((module, None))
            local = module
        return cst.parse_expression(f"{local}.{attr}")


def _argv(command: str) -> list[str]:
    """The argument vector a shell would run for ``command``, when it has no
    shell syntax at all (then the shell's word splitting is plain splitting
    on blanks, which is what shlex does too)."""
    if not command.strip() or _SHELL_SYNTAX & set(command):
        raise ManualFix(
            f"the command {command[:80]!r} uses shell syntax; write it as an argument vector "
            "(one list item per argument, pipes done in Python) and drop shell=True"
        )
    argv = shlex.split(command)
    if " ".join(argv) != " ".join(command.split()):
        raise ManualFix("the command's words do not split unambiguously; write the argv by hand")
    return argv


def timeout(call: cst.Call, ctx: Ctx) -> cst.Call:
    value = ctx.options.timeout
    text = str(int(value)) if float(value).is_integer() else repr(value)
    return set_kw(call, "timeout", cst.Integer(text) if text.isdigit() else cst.Float(text))


def verify(call: cst.Call, ctx: Ctx) -> cst.Call:
    bundle = ctx.options.ca_bundle
    value: cst.BaseExpression = cst.SimpleString(repr(bundle)) if bundle else cst.Name("True")
    return set_kw(call, "verify", value)


def yaml_load(call: cst.Call, ctx: Ctx) -> cst.Call:
    src = ctx.source
    for marker in ("add_constructor", "add_multi_constructor", "YAMLObject", "!!python"):
        if marker in src:
            raise ManualFix(
                f"the module uses {marker}: its documents may need a custom loader; decide which "
                "tags are trusted and build a SafeLoader subclass that allows only those"
            )
    loader = ctx.reference("yaml", "SafeLoader")
    if kw(call, "Loader") is None and len(call.args) > 1 and call.args[1].keyword is None:
        args = list(call.args)
        args[1] = args[1].with_changes(value=loader)
        return call.with_changes(args=args)
    return set_kw(call, "Loader", loader)


def unverified_context(call: cst.Call, ctx: Ctx) -> cst.Call:
    return call.with_changes(func=ctx.reference("ssl", "create_default_context"))


def flask_debug(call: cst.Call, ctx: Ctx) -> cst.Call:
    ctx.edit.imports.append(("os", None))
    local = ctx.local_name("os") or "os"
    return set_kw(call, "debug", cst.parse_expression(f'{local}.environ.get("FLASK_DEBUG") == "1"'))


def subprocess_shell(call: cst.Call, ctx: Ctx) -> cst.Call:
    if not call.args or call.args[0].keyword is not None:
        raise ManualFix("the command is not the first argument; write it as an argv list")
    command = literal(call.args[0].value)
    if command is None:
        raise ManualFix(
            "the command is built at run time; pass subprocess a list [program, arg, ...] with "
            "each value as its own item and drop shell=True"
        )
    argv = _argv(command)
    args = list(call.args)
    args[0] = args[0].with_changes(value=list_expr(argv))
    return drop_kw(call.with_changes(args=args), "shell")


def os_system(call: cst.Call, ctx: Ctx) -> cst.Call:
    if ctx.qual(call.func) != "os.system":
        raise ManualFix(
            "os.popen reads the command's output; use subprocess.run(argv, capture_output=True)"
        )
    if len(call.args) != 1:
        raise ManualFix("os.system takes one command string; rewrite the call by hand")
    command = literal(call.args[0].value)
    if command is None:
        raise ManualFix(
            "the command is built at run time; use subprocess.run([program, arg, ...]) with each "
            "value as its own item"
        )
    argv = _argv(command)
    ctx.edit.imports.append(("subprocess", None))
    local = ctx.local_name("subprocess") or "subprocess"
    ctx.edit.maybe_unused.append("os")
    new = cst.parse_expression(f"{local}.run({argv!r}, check=False)")
    assert isinstance(new, cst.Call)
    return new


def weak_hash(call: cst.Call, ctx: Ctx) -> cst.Call:
    verdict, why = context.judge(ctx.tree, ctx.line)
    if verdict == "secret":
        raise ManualFix(
            f"the digest looks security-relevant ({', '.join(why)}): hash passwords with argon2 "
            "or hashlib.scrypt, tokens with hashlib.sha256/hmac, and plan re-hashing stored values "
            "on next use"
        )
    if verdict == "unknown":
        raise ManualFix(
            "decide whether this digest protects a secret; if not (a checksum, cache key or "
            "ETag), add usedforsecurity=False; if it does, move to SHA-256 or a password hash"
        )
    return set_kw(call, "usedforsecurity", cst.Name("False"))


def insecure_random(call: cst.Call, ctx: Ctx) -> cst.BaseExpression:
    verdict, why = context.judge(ctx.tree, ctx.line)
    if verdict != "secret":
        raise ManualFix(
            "judged not security-relevant (names: "
            f"{', '.join(why) or 'none'}); left as is — if it makes tokens, passwords or keys, "
            "switch it to the secrets module"
        )
    fn = (ctx.qual(call.func) or "").rpartition(".")[2]
    ctx.edit.imports.append(("secrets", None))
    ctx.edit.maybe_unused.append("random")
    args = [a.value for a in call.args if a.keyword is None]
    code = cst.Module(body=[])

    def src(node: cst.BaseExpression) -> str:
        text = code.code_for_node(node)
        simple = isinstance(node, cst.Name | cst.Integer | cst.Attribute | cst.Call)
        return text if simple else f"({text})"

    if fn == "choice" and len(args) == 1 and len(call.args) == 1:
        out = f"secrets.choice({src(args[0])})"
    elif fn == "randint" and len(args) == 2 and len(call.args) == 2:
        out = f"secrets.randbelow({src(args[1])} - {src(args[0])} + 1) + {src(args[0])}"
    elif fn == "randrange" and len(args) == 1 and len(call.args) == 1:
        out = f"secrets.randbelow({src(args[0])})"
    elif fn == "randrange" and len(args) == 2 and len(call.args) == 2:
        out = f"secrets.randbelow({src(args[1])} - {src(args[0])}) + {src(args[0])}"
    elif fn == "getrandbits" and len(args) == 1 and len(call.args) == 1:
        out = f"secrets.randbits({src(args[0])})"
    else:
        raise ManualFix(
            f"random.{fn} makes a security value ({', '.join(why)}); rewrite it with "
            "secrets.choice / secrets.randbelow / secrets.token_urlsafe"
        )
    return cst.parse_expression(out)


def literal_eval(call: cst.Call, ctx: Ctx) -> cst.Call:
    if len(call.args) != 1 or literal(call.args[0].value) is None:
        raise ManualFix(
            "eval runs code built at run time; decide what the input may contain and use "
            "ast.literal_eval for data or an explicit dispatch for operations"
        )
    try:
        ast.literal_eval(literal(call.args[0].value) or "")
    except (ValueError, SyntaxError):
        raise ManualFix(
            "the evaluated string is code, not a literal; rewrite it as Python"
        ) from None
    return call.with_changes(func=ctx.reference("ast", "literal_eval"))


def torch_weights_only(call: cst.Call, ctx: Ctx) -> cst.Call:
    return set_kw(call, "weights_only", cst.Name("True"))


def tar_filter(call: cst.Call, ctx: Ctx) -> cst.Call:
    return set_kw(call, "filter", cst.SimpleString('"data"'))


def jinja_autoescape(call: cst.Call, ctx: Ctx) -> cst.Call:
    return set_kw(call, "autoescape", cst.Call(func=ctx.reference("jinja2", "select_autoescape")))


def defused_xml(call: cst.Call, ctx: Ctx) -> cst.Call:
    q = ctx.qual(call.func) or ""
    mod, _, fn = q.rpartition(".")
    if mod not in DEFUSED or fn not in XML_CALLS[mod][1]:
        raise ManualFix("the XML call is not one defusedxml replaces; review it by hand")
    target = DEFUSED[mod]
    ctx.edit.imports.append((target, None))
    head = get_full_name_for_node(call.func) or ""
    ctx.edit.maybe_unused.append(head.partition(".")[0])
    return call.with_changes(func=cst.parse_expression(f"{target}.{fn}"))


def cookie_flags(call: cst.Call, ctx: Ctx) -> cst.Call:
    call = set_kw(call, "secure", cst.Name("True"))
    call = set_kw(call, "httponly", cst.Name("True"))
    if kw(call, "samesite") is None:
        call = set_kw(call, "samesite", cst.SimpleString('"Lax"'))
    return call


REWRITES: dict[str, Rewrite] = {
    "PY-COOKIE-FLAGS": cookie_flags,
    "B113": timeout,
    "B501": verify,
    "B506": yaml_load,
    "B323": unverified_context,
    "B201": flask_debug,
    "B602": subprocess_shell,
    "B605": os_system,
    "B324": weak_hash,
    "B311": insecure_random,
    "B307": literal_eval,
    "B614": torch_weights_only,
    "B202": tar_filter,
    "B701": jinja_autoescape,
    **{rule: defused_xml for rule, _ in XML_CALLS.values()},
}


XML_RULES = frozenset(rule for rule, _ in XML_CALLS.values())
XML_IMPORT_RULES = frozenset({"B405", "B406", "B407", "B408", "B409"})
#: Rules rewritten at the statement, not the call.
STATEMENT_RULES = frozenset({"B306", "PY-DJANGO-DEBUG"})


def can_rewrite(rule: str) -> bool:
    """Whether a codemod exists for ``rule`` (the rest go to a person)."""
    return rule in REWRITES or rule in XML_IMPORT_RULES or rule in STATEMENT_RULES


def _matches(rule: str, call: cst.Call, ctx: Ctx) -> bool:
    """Whether ``call`` is one the detector reported under ``rule``."""
    from jupiter.plugins.python_security.detect import _call_hits, _own_call_hits

    node = ast.parse(cst.Module(body=[]).code_for_node(call), mode="eval").body
    if not isinstance(node, ast.Call):
        return False
    hits = [*_call_hits(node, ctx.names), *_own_call_hits(node, ctx.names)]
    return any(h.rule_id == rule for h in hits)


class _AtLine(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, rule: str, ctx: Ctx) -> None:
        super().__init__()
        self.rule, self.ctx, self.done = rule, ctx, 0
        self.rewrite = REWRITES[rule]

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        pos = self.get_metadata(PositionProvider, original)
        if pos.start.line != self.ctx.line or not _matches(self.rule, original, self.ctx):
            return updated
        self.done += 1
        return self.rewrite(updated, self.ctx)


class _DjangoDebug(cst.CSTTransformer):
    """``DEBUG = True`` -> ``DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"``."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, ctx: Ctx) -> None:
        super().__init__()
        self.ctx, self.done = ctx, 0

    def leave_Assign(self, original: cst.Assign, updated: cst.Assign) -> cst.Assign:
        pos = self.get_metadata(PositionProvider, original)
        target = updated.targets[0].target if len(updated.targets) == 1 else None
        if (
            pos.start.line != self.ctx.line
            or not isinstance(target, cst.Name)
            or target.value != "DEBUG"
        ):
            return updated
        self.ctx.edit.imports.append(("os", None))
        local = self.ctx.local_name("os") or "os"
        self.done += 1
        return updated.with_changes(
            value=cst.parse_expression(f'{local}.environ.get("DJANGO_DEBUG", "") == "1"')
        )


class _MktempAtLine(cst.CSTTransformer):
    """``name = tempfile.mktemp(...)`` -> ``fd, name = tempfile.mkstemp(...)``
    then ``os.close(fd)``: the path exists (created safely, 0600) instead of
    merely being chosen, which is what callers of mktemp go on to do."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, ctx: Ctx) -> None:
        super().__init__()
        self.ctx, self.done = ctx, 0

    def leave_SimpleStatementLine(
        self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        pos = self.get_metadata(PositionProvider, original)
        if not pos.start.line <= self.ctx.line <= pos.end.line:
            return updated
        (stmt,) = updated.body if len(updated.body) == 1 else (None,)
        if (
            not isinstance(stmt, cst.Assign)
            or len(stmt.targets) != 1
            or not isinstance(stmt.targets[0].target, cst.Name)
            or not isinstance(stmt.value, cst.Call)
            or self.ctx.qual(stmt.value.func) != "tempfile.mktemp"
        ):
            raise ManualFix(
                "mktemp's result is not simply assigned to a name; use tempfile.mkstemp() or "
                "NamedTemporaryFile(delete=False) and keep the file it creates"
            )
        name = stmt.targets[0].target.value
        call = stmt.value.with_changes(func=self.ctx.reference("tempfile", "mkstemp"))
        self.ctx.edit.imports.append(("os", None))
        fd = f"_{name}_fd"
        first = updated.with_changes(
            body=[stmt.with_changes(targets=[target(f"{fd}, {name}")], value=call)]
        )
        close = cst.parse_statement(f"os.close({fd})")
        self.done += 1
        return cst.FlattenSentinel([first, close.with_changes(leading_lines=[])])


def rewrite(
    source: str, rule: str, line: int, names: Names, tree: ast.Module, options: Options
) -> tuple[str, Edit]:
    """The module with the ``rule`` calls on ``line`` fixed (all the module's
    XML parse calls for an XML rule), imports added and unused ones removed."""
    module = cst.parse_module(source)
    edit = Edit()
    lines = [line]
    if rule in XML_RULES or rule in XML_IMPORT_RULES:
        from jupiter.plugins.python_security.detect import scan

        lines = sorted({h.line for h in scan("module.py", source) if h.rule_id in XML_RULES})
    total = 0
    for at in lines:
        ctx = Ctx(names, tree, at, options, edit, source)
        if rule == "PY-DJANGO-DEBUG":
            dbg = _DjangoDebug(ctx)
            module = MetadataWrapper(module, unsafe_skip_copy=True).visit(dbg)
            total += dbg.done
            continue
        if rule == "B306":
            mk = _MktempAtLine(ctx)
            module = MetadataWrapper(module, unsafe_skip_copy=True).visit(mk)
            total += mk.done
            continue
        rules = [rule] if rule in REWRITES else sorted(XML_RULES)
        for r in rules:
            t = _AtLine(r, ctx)
            module = MetadataWrapper(module, unsafe_skip_copy=True).visit(t)
            total += t.done
    if rule in XML_IMPORT_RULES:
        edit.maybe_unused.extend(local for local, q in names.alias.items() if q.startswith("xml"))
    elif total == 0:
        return source, edit
    if edit.imports:
        module = add_imports(module, [m for m, _ in edit.imports], names)
    if edit.maybe_unused:
        module = remove_unused(module, set(edit.maybe_unused), names)
    return module.code, edit
