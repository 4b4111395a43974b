"""Which asset a query means: by id, by name, or by a description ("the
database server" → the one asset of kind database). More than one
candidate is a question back to the user, never a guess."""

from __future__ import annotations

import re
from typing import Any

from jupiter.errors import InputError

# Words of a description and the asset kinds they stand for.
KIND_WORDS: dict[str, tuple[str, ...]] = {
    "database": ("database",),
    "db": ("database",),
    "postgres": ("database",),
    "postgresql": ("database",),
    "web": ("web_app", "web_server"),
    "webapp": ("web_app",),
    "app": ("web_app",),
    "application": ("web_app",),
    "host": ("host",),
    "bastion": ("host", "bastion"),
    "kubernetes": ("kubernetes",),
    "repository": ("repository",),
}
ENV_WORDS: dict[str, str] = {
    "production": "prod",
    "prod": "prod",
    "staging": "staging",
    "dev": "dev",
    "development": "dev",
}


class Ambiguous(InputError):
    """More than one asset fits; ``candidates`` lists them."""

    def __init__(self, message: str, candidates: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.candidates = candidates


def resolve_asset(assets: list[dict[str, Any]], ref: str) -> dict[str, Any]:
    """The one asset ``ref`` names or describes; InputError when none does,
    :class:`Ambiguous` (with the candidates) when several do."""
    text = ref.strip()
    low = text.lower()
    for key in ("id", "name"):
        exact = [a for a in assets if str(a.get(key) or "").lower() == low]
        if len(exact) == 1:
            return exact[0]
    words = [w for w in re.split(r"[^a-z0-9_]+", low) if w and w != "the"]
    kinds = {k for w in words for k in KIND_WORDS.get(w, ())}
    envs = {ENV_WORDS[w] for w in words if w in ENV_WORDS}
    chosen = assets
    if kinds:
        chosen = [a for a in chosen if a.get("kind") in kinds]
    if envs:
        chosen = [a for a in chosen if a.get("environment") in envs]
    if not kinds and not envs:
        chosen = [
            a
            for a in assets
            if low in str(a.get("id", "")).lower() or low in str(a.get("name") or "").lower()
        ]
    if len(chosen) == 1:
        return chosen[0]
    if not chosen:
        known = ", ".join(f"{a['id']} ({a.get('kind')})" for a in assets) or "none"
        raise InputError(f"no asset matches {text!r}; the assets are: {known}")
    listed = ", ".join(f"{a['id']} ({a.get('kind')}, {a.get('environment')})" for a in chosen)
    raise Ambiguous(f"{text!r} could mean {listed}; which one? Name it by id", chosen)
