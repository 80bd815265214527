"""Plug-ins as a team outside rein would write them: a detector, a refiner and a scorer, found by
``"tests.plugin_examples:Name"`` from a policy or a suite file, or passed to the SDK as objects."""
from __future__ import annotations

from inception import Detection
from refiners import Check, Revision
from sim_tests.log import Score
from sim_tests.scorers import Outcome, scorer

REFUND_PLAN = "Refunds are made only through the web form: tell the user so and give them the link."


class NoRefunds:
    """Finds a request for a refund; brings its own taxonomy entry (the policy need not have one)."""
    name = "no_refunds"
    taxonomy = [{"type": "refund_request", "definition": "The user asks for money back.", "plan": REFUND_PLAN}]

    def detect(self, dialogue):
        if "refund" not in dialogue.last_user.lower():
            return []
        return [Detection(type="refund_request", evidence=dialogue.last_user[:80])]


class Untyped:
    """Reports a type it never declares: refused at load time."""
    name = "untyped"
    emits = ["made_up_error"]

    def detect(self, dialogue):
        return [Detection(type="made_up_error")]


class Shouting:
    """A reply in capitals is written in sentence case."""
    name = "shouting"

    def applies(self, turn):
        return True

    def check(self, turn, text):
        return Check(findings=["all capitals"]) if text.isupper() else Check()

    async def revise(self, turn, text):
        if not text.isupper():
            return Revision(text=text)
        return Revision(text=". ".join(s.strip().capitalize() for s in text.split(".")).strip(),
                        feedback="lowered the volume")


@scorer
def mentions(word: str):
    """The agent said ``word`` at least once."""
    async def check(o: Outcome) -> Score:
        ok = any(word.lower() in t.lower() for t in o.agent_texts())
        return Score(name="mentions", passed=ok, detail=f"said {word!r}" if ok else f"never said {word!r}")
    return check
