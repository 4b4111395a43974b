"""Jupiter's HTTP face: a REST API and the web console, both thin layers over
one :class:`jupiter.engine.Engine` per request (ARCHITECTURE contract 9).

``create_app(home)`` builds the ASGI application that ``jupiter serve`` runs.
"""

from jupiter.api.app import create_app

__all__ = ["create_app"]
