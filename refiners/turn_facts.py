"""What the refiners work out once per pipeline turn and share between its stages: the dialogue's
evidence, the user's profile, and what was computed from them (factuality's verdict on a draft).

The pipeline makes one ``TurnFacts`` per turn and hands it to every stage in ``TurnContext.facts``
(the stream's check, the plan, the refine loop); a context built without one gets its own. The
dialogue can grow within a turn (a planted plan, a resolved tool call): each lookup names the
context it is for, and what was built for other messages is rebuilt, never served.

    >>> from policies.messages import ToolMessage, UserMessage
    >>> from refiners.base import TurnContext
    >>> facts = TurnFacts()
    >>> ctx = TurnContext(messages=[UserMessage(content="my order?"),
    ...                             ToolMessage(tool_call_id="c1", content='{"order_id": "A1234"}')], facts=facts)
    >>> facts.evidence(ctx) is facts.evidence(ctx.model_copy())   # the same messages: built once
    True
    >>> bigger = ctx.model_copy(update={"messages": [*ctx.messages, UserMessage(content="thanks")]})
    >>> facts.evidence(bigger) is facts.evidence(ctx)              # other messages: built for them
    False
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Protocol, TypeVar

from refiners.evidence import Evidence
from refiners.profile import Profile, extract_profile, merge_profiles, parse_profile

T = TypeVar("T")


class TurnContext(Protocol):
    """What of ``refiners.base.TurnContext`` the facts are built from (that module holds a
    ``TurnFacts``: it is not imported here)."""
    messages: list[Any]
    documents: list[str]
    profile: dict[str, Any] | None
MAX_REMEMBERED = 64  # results kept per evidence: a turn checks a draft or two, a stream none


def _same(a: list[Any], b: list[Any]) -> bool:
    """The same messages: the same objects in the same order (held here, so none is reused)."""
    return a is b or (len(a) == len(b) and all(map(operator.is_, a, b)))


class TurnFacts:
    """One turn's evidence and profile, each built once for the messages it was asked about. A
    stage may build the evidence in a worker thread while the loop waits: two builds at once only
    do the work twice, and each is stored whole, with the messages it was built from."""

    __slots__ = ("_built", "_profile", "reading")

    def __init__(self) -> None:
        # (messages, documents, evidence, results computed from it)
        self._built: tuple[list[Any], list[str], Evidence, dict[Any, Any]] | None = None
        self._profile: tuple[list[Any], Any, Profile | None] | None = None  # (messages, given, profile)
        # A read ahead running in a worker thread (a dialogue too big to read on the event loop):
        # the plan waits for it rather than reading the same dialogue a second time.
        self.reading: Any = None  # a concurrent.futures.Future (or the asyncio task of a stream's check)

    def _current(self, ctx: TurnContext) -> tuple[Evidence, dict[Any, Any]]:
        built = self._built
        if built is not None and _same(built[0], ctx.messages) and built[1] == ctx.documents:
            return built[2], built[3]
        evidence = Evidence.from_context(ctx)
        self._built = (list(ctx.messages), list(ctx.documents), evidence, {})
        return evidence, self._built[3]

    def evidence(self, ctx: TurnContext) -> Evidence:
        return self._current(ctx)[0]

    def ready(self, ctx: TurnContext) -> bool:
        """Whether the evidence of this context is built (asking for it costs nothing then)."""
        built = self._built
        return built is not None and _same(built[0], ctx.messages) and built[1] == ctx.documents

    def remembered(self, ctx: TurnContext, key: Any, compute: Callable[[Evidence], T]) -> T:
        """``compute(evidence)`` once per key for this context's evidence (factuality's verdict on a
        text: the planner's check and the refiner's revision ask the same question)."""
        evidence, results = self._current(ctx)
        if key not in results:
            if len(results) >= MAX_REMEMBERED:
                results.clear()
            results[key] = compute(evidence)
        return results[key]

    def profile(self, ctx: TurnContext) -> Profile | None:
        """The profile the request gave, with what the user said about themselves merged in."""
        held = self._profile
        if held is not None and _same(held[0], ctx.messages) and held[1] == ctx.profile:
            return held[2]
        given = parse_profile(ctx.profile) if ctx.profile else None
        merged = merge_profiles(given.model_dump(exclude_defaults=True) if given else None,
                                extract_profile(ctx.messages))
        profile = parse_profile(merged, "dialogue") if merged else None
        self._profile = (list(ctx.messages), ctx.profile, profile)
        return profile
