"""The OpenAPI document of the REST API, as committed in ``docs/openapi.json``.

Regenerate it with::

    python -m jupiter.api.openapi > docs/openapi.json
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson


def document() -> dict[str, Any]:
    """The application's OpenAPI document (built on a throw-away workspace)."""
    from jupiter.api.app import create_app

    with tempfile.TemporaryDirectory(prefix="jupiter-openapi-") as tmp:
        home = Path(tmp)
        app = create_app(home, f"sqlite:///{home / 'jupiter.db'}")
        try:
            return app.openapi()
        finally:
            app.state.server.close()


def render() -> str:
    return (
        orjson.dumps(document(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
    )


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.stdout.write(render())
