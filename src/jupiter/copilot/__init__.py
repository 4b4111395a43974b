"""The conversational face of Jupiter (the seed's ``CopilotEngine``)::

    from jupiter.copilot import CopilotEngine, Query

    copilot = CopilotEngine()
    response = copilot.process_query(Query(message="Create rollback point for database server",
                                           user_id="analyst_01", session_id="s1"))
    response.ok, response.intent, response.message, response.data

See docs/copilot.md for the intents, the parameters each reads and the
evidence behind a validation.
"""

from jupiter.copilot.engine import CopilotEngine
from jupiter.copilot.model import Query, Response

__all__ = ["CopilotEngine", "Query", "Response"]
