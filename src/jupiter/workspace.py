"""The workspace (``JUPITER_HOME``): database, snapshot blobs, advisories."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jupiter.errors import WorkspaceError

DEFAULT_HOME = Path(".jupiter")


@dataclass(frozen=True)
class Workspace:
    home: Path
    database_url: str

    @property
    def blobs(self) -> Path:
        return self.home / "blobs"

    @property
    def advisories(self) -> Path:
        return self.home / "advisories"

    @classmethod
    def resolve(cls, home: Path | None = None, database_url: str | None = None) -> Workspace:
        """``--home`` beats ``JUPITER_HOME`` beats ``./.jupiter``; likewise the URL."""
        chosen = home or Path(os.environ.get("JUPITER_HOME") or DEFAULT_HOME)
        chosen = chosen.expanduser().absolute()
        url = (
            database_url
            or os.environ.get("JUPITER_DATABASE_URL")
            or (f"sqlite:///{chosen / 'jupiter.db'}")
        )
        return cls(chosen, url)

    def ensure(self) -> None:
        """Create the workspace folders (idempotent) and prove they are writable."""
        try:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.blobs.mkdir(exist_ok=True, mode=0o700)
            with tempfile.NamedTemporaryFile(dir=self.home, prefix=".probe-"):
                pass
        except OSError as exc:
            raise WorkspaceError(
                f"workspace {self.home} is not writable ({exc.strerror}); "
                "choose another with --home or JUPITER_HOME, or fix its permissions"
            ) from None
