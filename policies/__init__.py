"""Policy packs and the types every other package shares (messages, the model protocol)."""
from policies.loader import PolicyError, load_policy, shipped
from policies.schema import Policy

__all__ = ["Policy", "PolicyError", "load_policy", "shipped"]
