"""The web console (server-rendered pages over the same Engine as the API).

``mount(app)`` adds its routes to the application from
:func:`jupiter.api.create_app`.
"""
