"""The decision log: every rule that fired in a request, in what mode, on what evidence, with the
plan or the diff, kept off the request's path (``log``), stored in SQLite or PostgreSQL (``store``),
reviewed on a page (``ui``) and turned into regression dialogues (``export``)."""
from middleware.decisions.log import DecisionLog, conversation_key, log_content
from middleware.decisions.store import DecisionStore, Filters, open_decision_store

__all__ = ["DecisionLog", "DecisionStore", "Filters", "conversation_key", "log_content", "open_decision_store"]
