"""Plug-ins as a team outside rein would write them: a detector, a refiner and a scorer, found by
``"tests.plugin_examples:Name"`` from a policy or a suite file, or passed to the SDK as objects."""
from __future__ import annotations

from inception import Detection
from refiners import Check, Revision, SentenceRevision
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


class WholeReply:
    """'guaranteed' becomes 'expected'. It declares nothing about streams: a turn it applies to is
    held whole."""
    name = "whole_reply"

    def applies(self, turn):
        return True

    def check(self, turn, text):
        return Check(findings=["a promise"]) if "guaranteed" in text else Check()

    async def revise(self, turn, text):
        return Revision(text=text.replace("guaranteed", "expected"), feedback="no promises")


class Sentencewise(WholeReply):
    """The same rule declared ``sentence_local``: ``revise`` is given one sentence at a time."""
    name = "sentencewise"
    sentence_local = True


class NoPromises(WholeReply):
    """The same rule as a ``SentenceRefiner``: a review of its own checks each sentence of a stream."""
    name = "no_promises"

    def consults(self, turn):
        return False  # rules only: never asks rein's model

    def sentence_review(self, turn):
        return _NoPromisesReview()


class _NoPromisesReview:
    async def sentence(self, reply, start, end, text):
        fixed = text.replace("guaranteed", "expected")
        return SentenceRevision(fixed, ["no promises"] if fixed != text else [])


@scorer
def mentions(word: str):
    """The agent said ``word`` at least once."""
    async def check(o: Outcome) -> Score:
        ok = any(word.lower() in t.lower() for t in o.agent_texts())
        return Score(name="mentions", passed=ok, detail=f"said {word!r}" if ok else f"never said {word!r}")
    return check
