"""Find what Bandit finds, with Bandit's rule ids and lines, for the rules
Jupiter can fix (so a Bandit finding and Jupiter's own are one finding, and
re-detection verifies a fix without running Bandit).

Names are resolved through the module's imports (``import requests as rq``,
``from yaml import load``), never guessed from spelling alone.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from jupiter.errors import InputError

HTTP_VERBS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "request"})
HTTP_MODULES = ("requests", "httpx")
SAFE_YAML_LOADERS = frozenset({"yaml.SafeLoader", "yaml.CSafeLoader", "yaml.BaseLoader"})
SUBPROCESS_CALLS = frozenset(
    {"Popen", "call", "check_call", "check_output", "run", "getoutput", "getstatusoutput"}
)
OS_SHELL_CALLS = frozenset({"os.system", "os.popen"})
RANDOM_CALLS = frozenset(
    {
        "random",
        "randrange",
        "randint",
        "choice",
        "choices",
        "uniform",
        "triangular",
        "sample",
        "getrandbits",
    }
)
#: Bandit's XML parse functions by rule: module -> functions.
XML_CALLS: dict[str, tuple[str, frozenset[str]]] = {
    "xml.etree.cElementTree": (
        "B313",
        frozenset({"parse", "iterparse", "fromstring", "XMLParser"}),
    ),
    "xml.etree.ElementTree": ("B314", frozenset({"parse", "iterparse", "fromstring", "XMLParser"})),
    "xml.sax.expatreader": ("B315", frozenset({"create_parser"})),
    "xml.dom.expatbuilder": ("B316", frozenset({"parse", "parseString"})),
    "xml.sax": ("B317", frozenset({"parse", "parseString", "make_parser"})),
    "xml.dom.minidom": ("B318", frozenset({"parse", "parseString"})),
    "xml.dom.pulldom": ("B319", frozenset({"parse", "parseString"})),
}
#: Bandit's import rules for xml modules.
XML_IMPORTS: dict[str, str] = {
    "xml.etree.cElementTree": "B405",
    "xml.etree.ElementTree": "B405",
    "xml.sax": "B406",
    "xml.dom.expatbuilder": "B407",
    "xml.parsers.expat": "B407",
    "xml.dom.minidom": "B408",
    "xml.dom.pulldom": "B409",
}
#: The defusedxml module that replaces each stdlib parser module.
DEFUSED = {
    "xml.etree.cElementTree": "defusedxml.ElementTree",
    "xml.etree.ElementTree": "defusedxml.ElementTree",
    "xml.sax.expatreader": "defusedxml.expatreader",
    "xml.dom.expatbuilder": "defusedxml.expatbuilder",
    "xml.sax": "defusedxml.sax",
    "xml.dom.minidom": "defusedxml.minidom",
    "xml.dom.pulldom": "defusedxml.pulldom",
}

TITLES: dict[str, str] = {
    "B113": "HTTP request without a timeout",
    "B506": "yaml.load without a safe loader",
    "B501": "HTTP request with certificate verification off",
    "B323": "unverified SSL context",
    "B201": "Flask app run with debug=True",
    "B602": "subprocess call with shell=True",
    "B605": "process started through a shell",
    "B324": "weak hash (MD5/SHA-1) for security",
    "B303": "weak hash (MD5/SHA-1)",
    "B311": "random used where security may depend on it",
    "B306": "tempfile.mktemp (race-prone)",
    "B701": "Jinja2 environment without autoescape",
    "B307": "eval",
    "B614": "torch.load without weights_only",
    "B202": "tarfile extraction without a filter",
    "PY-DJANGO-DEBUG": "Django settings with DEBUG = True",
    "PY-COOKIE-FLAGS": "cookie set without secure, httponly or samesite",
    "PY-JWT-NO-VERIFY": "JWT decoded without verifying its signature",
    "PY-CSRF-EXEMPT": "view exempted from CSRF protection",
    **{rule: "XML parsed with a parser open to entity attacks" for rule, _ in XML_CALLS.values()},
    **{rule: "xml module import (entity attacks)" for rule in XML_IMPORTS.values()},
}
SEVERITY: dict[str, str] = {
    "B113": "medium",
    "B506": "medium",
    "B501": "high",
    "B323": "medium",
    "B201": "high",
    "B602": "high",
    "B605": "high",
    "B324": "high",
    "B303": "medium",
    "B311": "low",
    "B306": "medium",
    "B701": "high",
    "B307": "medium",
    "B614": "high",
    "B202": "high",
}


@dataclass(frozen=True)
class Hit:
    rule_id: str
    line: int
    end_line: int
    detail: str = ""
    code: str = ""
    """The site's name that survives edits elsewhere in the module (lines
    move, this does not): the callee and positional arguments as
    ``ast.unparse`` writes them (keywords left out, so fixing ``verify=`` on
    a call does not rename the call for its missing ``timeout=``), or the
    import statement."""
    call_line: int = 0
    """The first line of the call (Bandit reports some rules, B501, at the
    offending keyword's line instead)."""


class Names:
    """The module's import aliases: local name -> dotted qualified name."""

    def __init__(self, tree: ast.Module) -> None:
        self.alias: dict[str, str] = {}
        self.imports: list[tuple[str, int]] = []  # (module, line)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.imports.append((a.name, node.lineno))
                    if a.asname:
                        self.alias[a.asname] = a.name
                    else:
                        head = a.name.split(".", 1)[0]
                        self.alias.setdefault(head, head)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                self.imports.append((node.module, node.lineno))
                for a in node.names:
                    self.alias[a.asname or a.name] = f"{node.module}.{a.name}"

    def qual(self, node: ast.expr) -> str | None:
        """``requests.get`` for ``rq.get`` after ``import requests as rq``."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        base = self.alias.get(node.id)
        if base is None:
            return None
        return ".".join([base, *reversed(parts)])

    def imported(self, prefix: str) -> bool:
        return any(m == prefix or m.startswith(prefix + ".") for m, _ in self.imports)


def kwarg(call: ast.Call, name: str) -> ast.keyword | None:
    return next((k for k in call.keywords if k.arg == name), None)


def is_const(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def site_key(call: ast.Call) -> str:
    args = ", ".join(ast.unparse(a) for a in call.args)
    return f"{ast.unparse(call.func)}({args})"


def parse_module(path: str, source: str) -> ast.Module:
    try:
        return ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise InputError(
            f"{path}:{exc.lineno}: Python that does not parse ({exc.msg}); fix the syntax "
            "(Python 2 code must be ported first)"
        ) from None
    except ValueError as exc:  # null bytes
        raise InputError(f"{path}: not Python source ({exc}); exclude the file") from None


def scan(path: str, source: str) -> list[Hit]:
    """Every fixable Bandit finding of one module."""
    tree = parse_module(path, source)
    names = Names(tree)
    hits: list[Hit] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            hits.extend(_call_hits(node, names))
            hits.extend(_own_call_hits(node, names))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            hits.extend(_import_hits(node))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            hits.extend(_decorator_hits(node, names))
    hits.extend(_settings_hits(path, tree))
    hits.sort(key=lambda h: (h.line, h.rule_id))
    return hits


def _call_hits(call: ast.Call, names: Names) -> list[Hit]:
    q = names.qual(call.func)
    out: list[Hit] = []

    def hit(rule: str, detail: str = "", line: int | None = None) -> None:
        end = call.end_lineno or call.lineno
        at = line or call.lineno
        out.append(Hit(rule, at, max(end, at), detail, site_key(call), call.lineno))

    if isinstance(call.func, ast.Name) and call.func.id == "eval" and "eval" not in names.alias:
        hit("B307")
        return out
    if q is None:
        if (
            isinstance(call.func, ast.Attribute)
            and call.func.attr == "run"
            and names.imported("flask")
            and is_const(getattr(kwarg(call, "debug"), "value", None), True)
        ):
            hit("B201")
        if (
            isinstance(call.func, ast.Attribute)
            and call.func.attr == "extractall"
            and names.imported("tarfile")
            and kwarg(call, "filter") is None
        ):
            hit("B202")
        return out
    mod, _, fn = q.rpartition(".")
    if mod in HTTP_MODULES and fn in HTTP_VERBS:
        timeout = kwarg(call, "timeout")
        if timeout is None or is_const(timeout.value, None):
            hit("B113")
        verify = kwarg(call, "verify")
        if verify is not None and is_const(verify.value, False):
            hit("B501", line=verify.value.lineno)
    elif q == "yaml.load":
        loader = kwarg(call, "Loader")
        node = (
            loader.value if loader is not None else (call.args[1] if len(call.args) > 1 else None)
        )
        if node is None or names.qual(node) not in SAFE_YAML_LOADERS:
            hit("B506")
    elif q == "ssl._create_unverified_context":
        hit("B323")
    elif mod == "subprocess" and fn in SUBPROCESS_CALLS:
        shell = kwarg(call, "shell")
        if shell is not None and is_const(shell.value, True):
            hit("B602")
    elif q in OS_SHELL_CALLS:
        hit("B605")
    elif q in ("hashlib.md5", "hashlib.sha1") or (
        q == "hashlib.new"
        and call.args
        and isinstance(call.args[0], ast.Constant)
        and str(call.args[0].value).lower() in ("md5", "sha1")
    ):
        used = kwarg(call, "usedforsecurity")
        if used is None or not is_const(used.value, False):
            hit("B324")
    elif mod == "random" and fn in RANDOM_CALLS:
        hit("B311")
    elif q == "tempfile.mktemp":
        hit("B306")
    elif mod in XML_CALLS and fn in XML_CALLS[mod][1]:
        hit(XML_CALLS[mod][0], mod)
    elif q == "jinja2.Environment":
        auto = kwarg(call, "autoescape")
        if auto is None or is_const(auto.value, False):
            hit("B701")
    elif q == "builtins.eval":
        hit("B307")
    elif q == "torch.load":
        weights = kwarg(call, "weights_only")
        if weights is None or not is_const(weights.value, True):
            hit("B614")
    return out


def _import_hits(node: ast.Import | ast.ImportFrom) -> list[Hit]:
    modules: list[str] = []
    if isinstance(node, ast.Import):
        modules = [a.name for a in node.names]
    elif node.module and node.level == 0:
        modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    out = []
    for mod in modules:
        rule = XML_IMPORTS.get(mod)
        if rule is not None:
            out.append(
                Hit(
                    rule,
                    node.lineno,
                    node.end_lineno or node.lineno,
                    mod,
                    ast.unparse(node),
                    node.lineno,
                )
            )
            break
    return out


def _own_call_hits(call: ast.Call, names: Names) -> list[Hit]:
    """Jupiter's own rules on calls: cookies without their flags, JWTs
    decoded without verification."""
    out: list[Hit] = []
    func = call.func
    if (
        isinstance(func, ast.Attribute)
        and func.attr == "set_cookie"
        and (names.imported("flask") or names.imported("django") or names.imported("werkzeug"))
    ):
        secure, httponly = kwarg(call, "secure"), kwarg(call, "httponly")
        if (
            secure is None
            or is_const(secure.value, False)
            or httponly is None
            or is_const(httponly.value, False)
            or kwarg(call, "samesite") is None
        ):
            out.append(_own("PY-COOKIE-FLAGS", call))
    elif names.qual(func) == "jwt.decode":
        options = kwarg(call, "options")
        verify = kwarg(call, "verify")
        unverified = verify is not None and is_const(verify.value, False)
        if options is not None and isinstance(options.value, ast.Dict):
            for key, value in zip(options.value.keys, options.value.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and key.value == "verify_signature"
                    and is_const(value, False)
                ):
                    unverified = True
        if unverified:
            out.append(_own("PY-JWT-NO-VERIFY", call))
    return out


def _decorator_hits(node: ast.FunctionDef | ast.AsyncFunctionDef, names: Names) -> list[Hit]:
    out = []
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if (names.qual(target) or "").endswith("csrf_exempt"):
            out.append(
                Hit(
                    "PY-CSRF-EXEMPT",
                    deco.lineno,
                    deco.end_lineno or deco.lineno,
                    node.name,
                    f"@csrf_exempt {node.name}",
                    deco.lineno,
                )
            )
    return out


def _settings_hits(path: str, tree: ast.Module) -> list[Hit]:
    """``DEBUG = True`` at the top of a Django settings module (one that sets
    ``INSTALLED_APPS`` or is named ``settings``)."""
    assigned = {
        t.id
        for stmt in tree.body
        if isinstance(stmt, ast.Assign)
        for t in stmt.targets
        if isinstance(t, ast.Name)
    }
    base = path.rsplit("/", 1)[-1]
    if "INSTALLED_APPS" not in assigned and not base.startswith("settings"):
        return []
    out = []
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and stmt.targets[0].id == "DEBUG"
            and is_const(stmt.value, True)
        ):
            out.append(
                Hit(
                    "PY-DJANGO-DEBUG",
                    stmt.lineno,
                    stmt.end_lineno or stmt.lineno,
                    "",
                    "DEBUG = True",
                    stmt.lineno,
                )
            )
    return out


def _own(rule: str, call: ast.Call) -> Hit:
    end = call.end_lineno or call.lineno
    return Hit(rule, call.lineno, end, "", site_key(call), call.lineno)
