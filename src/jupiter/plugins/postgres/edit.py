"""Layout-keeping edits of ``postgresql.conf`` and ``pg_hba.conf`` lines.

* A set setting has its *effective* (last) line changed in place: only the
  value token is replaced, so indentation, ``=`` spacing and a trailing
  comment stay.
* An unset setting is inserted into the main file right after its
  commented-out template line (``#ssl = off``) when there is one — where a DBA
  would uncomment it — else appended at the end. Nothing sets it anywhere, so
  the new line is the effective one wherever it goes.
* A pg_hba record has single fields replaced; the whitespace after a field
  that grows or shrinks is adjusted so the following columns stay aligned.
"""

from __future__ import annotations

import re

from jupiter.plans import WriteFile, file_edits
from jupiter.plugins.postgres.detect import template_line
from jupiter.plugins.postgres.parse_conf import PgConfig, quote
from jupiter.plugins.postgres.parse_hba import Field
from jupiter.targets.base import TargetView

# Values that postgresql.conf reads the same bare or quoted (no dots: "a.b"
# lexes as a qualified name and is rejected as a value).
_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_:/-]*$|^[0-9]+$")


def render(value: str, quoted: bool) -> str:
    """The value token: quoted when asked to or when a bare token would not parse."""
    return quote(value) if quoted or not _BARE.match(value) else value


class ConfEdits:
    """Pending edits on the files of one parsed configuration."""

    def __init__(self, config: PgConfig) -> None:
        self._config = config
        self._lines: dict[str, list[str]] = {}
        self._inserts: dict[int, list[str]] = {}  # 0-based index in main -> new lines

    def _file(self, path: str) -> list[str]:
        if path not in self._lines:
            self._lines[path] = self._config.files[path].lines()
        return self._lines[path]

    def set(self, name: str, value: str, note: str, *, quoted: bool = False) -> None:
        """Make ``value`` the effective value of ``name`` (``note`` ends up as
        the comment of an inserted line)."""
        setting = self._config.get(name)
        if setting is not None:
            lines = self._file(setting.path)
            raw = lines[setting.line - 1]
            start, end = setting.span
            token = render(value, quoted or setting.quoted)
            lines[setting.line - 1] = raw[:start] + token + raw[end:]
            return
        main = self._file(self._config.main)
        anchor = template_line(self._config, name)
        at = anchor if anchor is not None else len(main)
        text = f"{name} = {render(value, quoted)}"
        pad = "\t" * max(1, (40 - len(text) + 7) // 8)
        self._inserts.setdefault(at, []).append(f"{text}{pad}# {note}")

    def build(self, view: TargetView) -> tuple[list[WriteFile], str]:
        """WriteFile changes (with their preconditions) and the unified diff."""
        if self._inserts:
            main = self._file(self._config.main)
            newline = "\r\n" if main and main[0].endswith("\r\n") else "\n"
            if main and not main[-1].endswith("\n"):
                main[-1] += newline
            for at in sorted(self._inserts, reverse=True):
                main[at:at] = [line + newline for line in self._inserts[at]]
        return file_edits(
            view,
            (
                (path, self._config.files[path].text, "".join(lines))
                for path, lines in self._lines.items()
            ),
        )


def replace_fields(text: str, fields: tuple[Field, ...], new: dict[int, str]) -> str:
    """``text`` with ``fields[i]`` replaced by ``new[i]``, keeping columns aligned
    where the whitespace allows it (never fewer than one blank between fields)."""
    out = [text[: fields[0].start]]
    delta = 0
    prev_end = fields[0].start
    for index, field in enumerate(fields):
        if index:
            gap, delta = _adjust(text[prev_end : field.start], delta)
            out.append(gap)
        token = new.get(index, field.text)
        delta += len(token) - len(field.text)
        out.append(token)
        prev_end = field.end
    tail = text[prev_end:]
    stripped = tail.lstrip(" ")
    if stripped.startswith("#"):
        gap, _ = _adjust(tail[: len(tail) - len(stripped)], delta)
        tail = gap + stripped
    out.append(tail)
    return "".join(out)


def _adjust(gap: str, delta: int) -> tuple[str, int]:
    """Shrink or grow a run of spaces by ``delta`` (tabs are left as they are)."""
    if not gap or gap.strip(" "):
        return gap, delta
    if delta > 0:
        take = min(delta, len(gap) - 1)
        return gap[take:], delta - take
    if delta < 0:
        return gap + " " * -delta, 0
    return gap, 0
