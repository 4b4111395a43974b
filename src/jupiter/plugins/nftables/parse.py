"""A reader for the nftables text format (``/etc/nftables.conf``), enough for
the firewall checks and for evaluating simple packets against a ruleset.

What it understands: ``flush ruleset``, ``define NAME = value`` (substituted
for ``$NAME``), ``include`` (recorded, not followed), ``table [family] name {}``
with ``chain`` (base-chain header ``type filter hook input priority 0;
policy drop;``) and ``set`` blocks (``elements = { ... }``), and rules built
from the match and statement vocabulary in :mod:`jupiter.plugins.nftables.rules`.

What it does not: command-style statements (``add rule ...``), maps,
flowtables and expressions outside that vocabulary. Those are kept as
``unparsed`` statements or ``unknown`` matches so callers can be
conservative about them instead of silently trusting them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jupiter.errors import InputError
from jupiter.plugins.nftables.rules import Rule, parse_rule

_SINGLE = "{};,\n"
_TABLE_BLOCKS = frozenset(
    {"chain", "set", "map", "flowtable", "counter", "quota", "ct", "limit", "secmark", "synproxy"}
)


@dataclass(frozen=True)
class Token:
    text: str
    line: int
    quoted: bool = False


@dataclass
class Chain:
    name: str
    line: int
    type: str | None = None
    hook: str | None = None
    priority: str | None = None
    policy: str | None = None
    rules: list[Rule] = field(default_factory=list)

    @property
    def is_input_filter(self) -> bool:
        return self.type == "filter" and self.hook == "input"

    def effective_policy(self) -> str:
        """``accept`` or ``drop``: the chain's policy (accept when none is given,
        as nft does), or ``drop`` when the last rule drops or rejects every
        packet that reaches it."""
        if self.rules:
            last = self.rules[-1]
            if not last.matches and last.verdict in ("drop", "reject"):
                return "drop"
        return "drop" if self.policy == "drop" else "accept"


@dataclass
class Table:
    family: str
    name: str
    line: int
    chains: dict[str, Chain] = field(default_factory=dict)
    sets: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Ruleset:
    tables: list[Table] = field(default_factory=list)
    flushes: bool = False
    includes: list[tuple[int, str]] = field(default_factory=list)
    unparsed: list[tuple[int, str]] = field(default_factory=list)

    def input_chains(self) -> list[tuple[Table, Chain]]:
        """Base chains filtering incoming packets, in file order."""
        return [
            (t, c)
            for t in self.tables
            if t.family in ("ip", "ip6", "inet")
            for c in t.chains.values()
            if c.is_input_filter
        ]


def tokenize(text: str, source: str = "ruleset") -> list[Token]:
    """Split nftables text into tokens; newlines are tokens (they end statements)."""
    tokens: list[Token] = []
    i, line, n = 0, 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and text[i + 1 : i + 2] == "\n":
            i, line = i + 2, line + 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch == '"':
            end = text.find('"', i + 1)
            if end < 0 or "\n" in text[i:end]:
                raise InputError(
                    f'{source} line {line}: a string opened with " is not closed on the same '
                    "line; fix the quoting"
                )
            tokens.append(Token(text[i + 1 : end], line, quoted=True))
            i = end + 1
        elif ch in _SINGLE:
            tokens.append(Token(ch, line))
            line += ch == "\n"
            i += 1
        elif ch.isspace():
            i += 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in _SINGLE + '"#':
                i += 1
            tokens.append(Token(text[start:i], line))
    return tokens


class _Parser:
    def __init__(self, tokens: list[Token], source: str) -> None:
        self.toks = tokens
        self.pos = 0
        self.source = source
        self.defines: dict[str, list[Token]] = {}

    def _error(self, line: int, what: str) -> InputError:
        return InputError(f"{self.source} line {line}: {what}; fix the ruleset syntax")

    def statement(self, block_words: frozenset[str]) -> tuple[list[Token], bool]:
        """Read one statement. Returns its tokens and whether it opens a block
        (its first word is in ``block_words`` and it ends with ``{``). Stops
        before a ``}`` that closes the enclosing block."""
        out: list[Token] = []
        depth = 0
        while self.pos < len(self.toks):
            tok = self.toks[self.pos]
            if not tok.quoted:
                if tok.text == "\n" and depth > 0:
                    self.pos += 1
                    continue
                if tok.text in ("\n", ";") and depth == 0:
                    self.pos += 1
                    if out:
                        return out, False
                    continue
                if tok.text == "}" and depth == 0:
                    return out, False
                if tok.text == "{":
                    if depth == 0 and out and out[0].text in block_words:
                        self.pos += 1
                        return out, True
                    depth += 1
                elif tok.text == "}":
                    depth -= 1
                elif tok.text.startswith("$") and tok.text[1:] in self.defines:
                    value = self.defines[tok.text[1:]]
                    out.extend(Token(d.text, tok.line, d.quoted) for d in value)
                    self.pos += 1
                    continue
            out.append(tok)
            self.pos += 1
        if depth:
            raise self._error(out[0].line if out else 0, "a '{' is never closed")
        return out, False

    def close_block(self, opened_at: int) -> None:
        if self.pos >= len(self.toks):
            raise self._error(opened_at, "the block opened here is never closed with '}'")
        self.pos += 1  # the closing brace

    def skip_block(self, opened_at: int) -> None:
        while True:
            stmt, is_block = self.statement(_TABLE_BLOCKS | {"elements"})
            if is_block:
                self.skip_block(stmt[0].line)
            elif not stmt:
                break
        self.close_block(opened_at)

    def ruleset(self) -> Ruleset:
        rs = Ruleset()
        while self.pos < len(self.toks):
            stmt, is_block = self.statement(frozenset({"table", "add", "create"}))
            if not stmt:
                if self.pos < len(self.toks):  # a stray '}'
                    raise self._error(self.toks[self.pos].line, "unexpected '}'")
                break
            words = [t.text for t in stmt]
            line = stmt[0].line
            if is_block and words[0] in ("add", "create"):
                words = words[1:]
            if is_block and words[0] == "table" and 2 <= len(words) <= 3:
                family, name = (words[1], words[2]) if len(words) == 3 else ("ip", words[1])
                rs.tables.append(self.table(family, name, line))
            elif is_block:
                rs.unparsed.append((line, " ".join(words)))
                self.skip_block(line)
            elif words[:2] == ["flush", "ruleset"]:
                rs.flushes = True
            elif words[0] == "include" and len(words) == 2:
                rs.includes.append((line, words[1]))
            elif words[0] == "define" and len(words) >= 4 and words[2] == "=":
                self.defines[words[1]] = stmt[3:]
            else:
                rs.unparsed.append((line, " ".join(words)))
        return rs

    def table(self, family: str, name: str, line: int) -> Table:
        table = Table(family, name, line)
        while True:
            stmt, is_block = self.statement(_TABLE_BLOCKS)
            if not stmt:
                break
            words = [t.text for t in stmt]
            if is_block and words[0] == "chain" and len(words) == 2:
                table.chains[words[1]] = self.chain(words[1], stmt[0].line)
            elif is_block and words[0] == "set" and len(words) == 2:
                table.sets[words[1]] = self.set_elements(stmt[0].line)
            elif is_block:
                self.skip_block(stmt[0].line)
        self.close_block(line)
        return table

    def chain(self, name: str, line: int) -> Chain:
        chain = Chain(name, line)
        while True:
            stmt, _ = self.statement(frozenset())
            if not stmt:
                break
            words = [t.text for t in stmt]
            if words[0] == "type" and "hook" in words:
                chain.type = words[1]
                chain.hook = words[words.index("hook") + 1]
                if "priority" in words:
                    chain.priority = " ".join(words[words.index("priority") + 1 :])
            elif words[0] == "policy" and len(words) == 2:
                chain.policy = words[1]
            elif words[0] in ("comment", "devices", "device"):
                continue
            else:
                chain.rules.append(parse_rule(words, stmt[0].line))
        self.close_block(line)
        return chain

    def set_elements(self, line: int) -> list[str]:
        elements: list[str] = []
        while True:
            stmt, _ = self.statement(frozenset())
            if not stmt:
                break
            words = [t.text for t in stmt]
            if words[:2] == ["elements", "="]:
                elements = [w for w in words[2:] if w not in ("{", "}", ",")]
        self.close_block(line)
        return elements


def parse_ruleset(text: str, source: str = "ruleset") -> Ruleset:
    """Parse nftables text. Raises InputError (with the line) on broken
    structure such as unbalanced braces or unterminated strings."""
    return _Parser(tokenize(text, source), source).ruleset()
