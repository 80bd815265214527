"""Action checks: a tool-call draft against the pack's ``actions:`` rules (CEL) and the built-in
checks, before the call reaches the client. See ``ActionChecker``."""
from __future__ import annotations

from inception.actions.engine import ADVICE, ActionChecker

__all__ = ["ADVICE", "ActionChecker"]
