"""Where PostgreSQL configurations are in a repository (see
:mod:`jupiter.plugins.configs`).

A target with a cluster at a host layout (``etc/postgresql/<v>/<c>/``,
``var/lib/pgsql/...``) is read as before. In any other target a
``postgresql.conf`` is taken when it is named so, or when a Dockerfile
copies it to a path ending in ``/postgresql.conf``; it must parse as the
server parses it and set at least one setting. Its ``pg_hba.conf``,
``postgresql.auto.conf`` and the ``conf.d/*.conf`` files it includes are
the ones beside it (relative paths resolve against the including file, as
the server does); absolute paths name host files outside the repository
and are reported, not followed. A ``pg_hba.conf`` with no
``postgresql.conf`` beside it, and templates (``*.j2``), are reported and
not edited.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from jupiter.errors import InputError
from jupiter.plugins import configs
from jupiter.plugins.configs import TakenFile
from jupiter.targets.base import TargetView

DOMAIN = "postgres"
_IMAGE_CONF = re.compile(r"/postgresql\.conf$")
_NAMES = ("postgresql.conf", "pg_hba.conf", "postgresql.auto.conf")


@dataclass
class Survey:
    mains: dict[str, str] = field(default_factory=dict)  # main -> evidence
    files: list[TakenFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _named(path: str) -> bool:
    return posixpath.basename(configs.untemplated(path)) in _NAMES


def survey(view: TargetView) -> Survey:
    """The repository's ``postgresql.conf`` files and why each was taken."""
    from jupiter.plugins.postgres.parse_conf import parse_conf

    out = Survey()
    reasons: dict[str, str] = {}
    index = configs.RepoIndex(view)
    for copy in configs.image_copies(index):
        if _IMAGE_CONF.search(copy.dest):
            reasons[copy.source] = copy.evidence("postgres")
    hba_alone: list[str] = []
    for path in configs.candidates(index, _named):
        name = posixpath.basename(path)
        if configs.is_template(path):
            out.files.append(
                TakenFile(
                    path,
                    DOMAIN,
                    f"named {name}, a Jinja template: Jupiter checks templates of sshd only; "
                    "not checked or edited",
                    "ambiguous",
                    "template",
                )
            )
            continue
        if name == "postgresql.conf":
            reasons.setdefault(path, "named postgresql.conf")
        elif (
            name == "pg_hba.conf"
            and view.stat(posixpath.join(posixpath.dirname(path), "postgresql.conf")) is None
        ):
            hba_alone.append(path)
    for path in sorted(reasons):
        try:
            configs.read_config_text(view, path)
            config = parse_conf(view, path, "/", repo=True)
        except InputError as exc:
            out.files.append(TakenFile(path, DOMAIN, f"{reasons[path]}, but {exc}", "refused"))
            out.problems.append(f"{path}: not taken: {exc}")
            continue
        if not config.order:
            why = f"{reasons[path]}, but it sets no PostgreSQL setting; not edited"
            out.files.append(TakenFile(path, DOMAIN, why, "refused"))
            out.problems.append(f"{path}: {why}")
            continue
        evidence = (
            f"{reasons[path]}; it parses as PostgreSQL reads it ({len(config.order)} settings)"
        )
        out.mains[path] = evidence
        out.files.append(TakenFile(path, DOMAIN, evidence))
        out.problems.extend(config.problems)
        for inc in config.files:
            if inc != path:
                out.files.append(TakenFile(inc, DOMAIN, f"included by {path}", role="include"))
    for path in hba_alone:
        why = "named pg_hba.conf, but no postgresql.conf is beside it: ambiguous, not edited"
        out.files.append(TakenFile(path, DOMAIN, why, "ambiguous"))
        out.problems.append(f"{path}: {why}")
    return out
