"""Replace the values spliced into rendered SQL with placeholders.

Works on the pieces of :mod:`jupiter.plugins.sql_injection.template`. A value
inside a single-quoted SQL literal becomes one bare placeholder (the quotes
go; text around it, such as the ``%`` of a LIKE pattern, moves into the
parameter value). An unquoted value becomes a placeholder only where SQL
expects a value (after a comparison operator, LIMIT/OFFSET, BETWEEN/AND,
LIKE, inside VALUES (...)); anywhere else it is an identifier or a keyword,
which parameters cannot carry, so :class:`ManualFix` is raised.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

import libcst as cst

from jupiter.plugins.sql_injection.paramstyle import Paramstyle
from jupiter.plugins.sql_injection.template import Kept, ManualFix, Piece, Slot, Text, code_of

_IDENT_MANUAL = (
    "the value {what} sits where SQL expects an identifier or keyword (after {before!r}), "
    "which a query parameter cannot carry; check it against an allow-list of known "
    "names instead"
)
_VALUE_BEFORE = re.compile(
    r"(?:<=|>=|<>|!=|=|<|>|\bLIMIT|\bOFFSET|\bBETWEEN|\bLIKE|\bILIKE"
    r"|\bBETWEEN\s+\S+\s+AND)\s*$",
    re.IGNORECASE,
)
_IN_LIST = re.compile(r"\bIN\s*\(\s*$", re.IGNORECASE)
_VALUES_LIST = re.compile(r"\bVALUES\s*\((?:[^()']|'[^']*'|\([^()]*\))*$", re.IGNORECASE)
_BIND = re.compile(r"(?<![:\w\\]):([A-Za-z_]\w*)")


@dataclass
class Parameterised:
    """SQL text with placeholders (escaped for the paramstyle), the module
    constants kept in place, and the parameter values in placeholder order."""

    parts: list[str | Kept] = field(default_factory=list)
    values: list[tuple[str, cst.BaseExpression]] = field(default_factory=list)


Atom = str | Slot | Kept


def _atoms(pieces: list[Piece]) -> list[Atom]:
    atoms: list[Atom] = []
    for piece in pieces:
        if isinstance(piece, Text):
            atoms.extend(piece.text)
        else:
            atoms.append(piece)
    return atoms


def _bind_name(expr: cst.BaseExpression, taken: set[str]) -> str:
    base = "param"
    if isinstance(expr, cst.Name):
        base = expr.value
    elif isinstance(expr, cst.Attribute):
        base = expr.attr.value
    elif isinstance(expr, cst.Call) and len(expr.args) == 1:
        inner = expr.args[0].value
        if isinstance(inner, cst.Name | cst.Attribute):
            return _bind_name(inner, taken)
    base = base.strip("_") or "param"
    if keyword.iskeyword(base):
        base += "_"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _slot_value(slot: Slot) -> cst.BaseExpression:
    expr = slot.expr
    if isinstance(expr, cst.Name | cst.Attribute | cst.Subscript | cst.Call):
        expr = expr.with_changes(lpar=[], rpar=[])
    if slot.conversion == "d":
        return cst.Call(func=cst.Name("int"), args=[cst.Arg(expr)])
    return expr


def _fstring_value(contents: list[Atom], percent_escaped: bool) -> cst.BaseExpression:
    """An f-string rendering ``contents`` exactly as the database saw it."""
    body: list[str] = []
    codes: list[str] = []
    run: list[str] = []

    def flush() -> None:
        text = "".join(run)
        if percent_escaped:
            text = text.replace("%%", "%")
        body.append(
            text.replace("\\", "\\\\")
            .replace('"', '\\"')
            .replace("{", "{{")
            .replace("}", "}}")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
        run.clear()

    for atom in contents:
        if isinstance(atom, str):
            run.append(atom)
        elif isinstance(atom, Slot):
            flush()
            code = code_of(_slot_value(atom))
            codes.append(code)
            body.append("{" + code + "}")
        else:
            raise ManualFix("a module constant sits inside a quoted SQL value; rewrite it by hand")
    flush()
    if any(c in code for code in codes for c in '"\\\n#{}'):
        raise ManualFix(
            "a value inside a quoted SQL pattern is too complex to move into an f-string; "
            "assign it to a variable first"
        )
    return cst.parse_expression('f"' + "".join(body) + '"')


def _placeholder(style: Paramstyle, name: str, position: int) -> str:
    """The placeholder of the ``position``-th (1-based) value called ``name``."""
    return {
        "qmark": "?",
        "format": "%s",
        "pyformat": f"%({name})s",
        "named": ":" + name,
        "numeric": f":{position}",
        "dollar": f"${position}",
    }[style]


def _scan_quoted(atoms: list[Atom], start: int, quote: str) -> tuple[int, list[Atom]]:
    """Index of the closing quote and the literal's contents (doubled quotes undone)."""
    contents: list[Atom] = []
    j = start + 1
    while j < len(atoms):
        atom = atoms[j]
        if atom == quote:
            if j + 1 < len(atoms) and atoms[j + 1] == quote:
                contents.append(quote)
                j += 2
                continue
            return j, contents
        contents.append(atom)
        j += 1
    raise ManualFix(f"the SQL has an unterminated {quote} quote around a value; fix it first")


def _describe(slot: Slot | Kept) -> str:
    return "{" + code_of(slot.expr) + "}"


def parameterise(
    pieces: list[Piece], style: Paramstyle, percent_escaped: bool = False
) -> Parameterised:
    """Placeholders for every :class:`Slot` in ``pieces`` (see module doc).

    With the ``format`` style, a literal ``%`` must be doubled once parameters
    are passed, unless the API always applied %-substitution, so that the SQL
    text is already escaped (``percent_escaped``: Django ``raw``/``extra``).
    """
    atoms = _atoms(pieces)
    taken = {m.group(1) for p in pieces if isinstance(p, Text) for m in _BIND.finditer(p.text)}
    out = Parameterised()
    text: list[str] = []  # rendered SQL so far, for context checks

    def emit(sql: str, escape: bool = True) -> None:
        text.append(sql)
        if escape and style in ("format", "pyformat") and not percent_escaped:
            sql = sql.replace("%", "%%")
        if out.parts and isinstance(out.parts[-1], str):
            out.parts[-1] += sql
        else:
            out.parts.append(sql)

    def add_value(value: cst.BaseExpression, name_from: cst.BaseExpression) -> None:
        name = _bind_name(name_from, taken)
        out.values.append((name, value))
        emit(_placeholder(style, name, len(out.values)), escape=False)

    i = 0
    while i < len(atoms):
        atom = atoms[i]
        if isinstance(atom, Kept):
            if any(q in atom.text for q in "'\"%?:"):
                raise ManualFix(
                    f"the constant {atom.text!r} contains quotes or placeholder characters; "
                    "rewrite the query by hand"
                )
            out.parts.append(atom)
            text.append(atom.text)
            i += 1
        elif isinstance(atom, Slot):
            before = "".join(text)
            after = "".join(a if isinstance(a, str) else " " for a in atoms[i + 1 : i + 8])
            _check_value_position(atom, before, after)
            add_value(_slot_value(atom), atom.expr)
            i += 1
        elif atom in ("'", '"'):
            end, contents = _scan_quoted(atoms, i, atom)
            slots = [a for a in contents if isinstance(a, Slot)]
            if not slots and not any(isinstance(a, Kept) for a in contents):
                emit("".join(a for a in atoms[i : end + 1] if isinstance(a, str)))
            elif atom == '"':
                raise ManualFix(
                    _IDENT_MANUAL.format(
                        what=_describe(slots[0]) if slots else "constant",
                        before='"',
                    )
                    + " (double quotes delimit identifiers in SQL)"
                )
            elif len(contents) == 1 and isinstance(contents[0], Slot):
                add_value(_slot_value(contents[0]), contents[0].expr)
            else:
                add_value(_fstring_value(contents, percent_escaped), slots[0].expr)
            i = end + 1
        elif atom == "-" and i + 1 < len(atoms) and atoms[i + 1] == "-":
            end = i
            while end < len(atoms) and atoms[end] != "\n":
                if not isinstance(atoms[end], str):
                    raise ManualFix("a value sits inside an SQL comment; remove it by hand")
                end += 1
            emit("".join(a for a in atoms[i:end] if isinstance(a, str)))
            i = end
        else:
            assert isinstance(atom, str)
            emit(atom)
            i += 1
    return out


def _check_value_position(slot: Slot, before: str, after: str) -> None:
    what = _describe(slot)
    if (
        before[-1:].isalnum()
        or before[-1:] in ("_", ".", "`", "[")
        or (after[:1].isalnum() or after[:1] in ("_", ".", "`", "]", "("))
    ):
        raise ManualFix(
            f"the value {what} is glued to other SQL text, so it forms part of a name or "
            "keyword; check it against an allow-list of known names instead"
        )
    tail = before.rstrip()
    if _IN_LIST.search(tail):
        raise ManualFix(
            f"the value {what} fills an IN (...) list, which one parameter cannot carry; "
            "build one placeholder per item by hand"
        )
    in_values = tail.endswith(("(", ",")) and _VALUES_LIST.search(tail)
    if _VALUE_BEFORE.search(tail) or in_values:
        return
    words = tail.split()
    raise ManualFix(_IDENT_MANUAL.format(what=what, before=" ".join(words[-3:])))
