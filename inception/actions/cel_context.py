"""The CEL variables of the rule checks, kept converted from one check to the next.

Converting a Python value into CEL is most of what a rule check costs (each string, map and map
key goes through the library's chain of type tests: bench/cel_engines.py shows it), while what a
dialogue's rules read changes little from one draft to the next: the same fetched records, the
same tables, the same "now". So each ``cel.Context`` of a thread (one per tool) keeps every
variable it was given, each with a key saying what value it holds; a check converts only the
variables whose key changed. Keys are built by the caller from content (strings, times) or from the identity of an
object the slot keeps alive (a record from the extraction cache), never from a JSON value itself.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Hashable, NamedTuple

from policies.cel_names import covers


class Wanted(NamedTuple):
    key: Hashable | None          # what the value is; None: the variable has no value (left unset)
    make: Callable[[], Any]       # the value, built only when the slot cannot serve it
    anchor: Any = None            # objects the key names by identity, kept alive with the slot
    read: Any = None              # the read tree the value is projected by (policies.cel_names)


# The last part of a record's key when its value holds every map entry an argument could pick (a
# read ahead, before the call is known): it serves a call's key that names the entries it picks.
EVERY = ("*every*",)
MAX_SCOPES = 64  # contexts per thread (one a tool and record), at least: the least recently used dropped


class CelVariables:
    def __init__(self, functions: dict[str, Any], max_scopes: int = MAX_SCOPES):
        self.functions = functions
        self.max_scopes = max_scopes
        self._local = threading.local()  # a cel.Context is not thread-safe
        self._covered: dict[tuple[int, int], tuple[Any, Any, bool]] = {}

    def _covers(self, a: Any, b: Any) -> bool:
        """``covers(a, b)``, remembered for the two trees (a tool's, kept with its plan: the same
        objects from one check to the next; each entry keeps its trees, so their ids stay theirs)."""
        found = self._covered.get((id(a), id(b)))
        if found is None or found[0] is not a or found[1] is not b:
            if len(self._covered) >= 4096:
                self._covered.clear()
            found = self._covered[(id(a), id(b))] = (a, b, covers(a, b))
        return found[2]

    def _held(self) -> dict[Hashable, tuple[Any, dict[str, tuple[Hashable, Any, Any]]]]:
        return self._local.__dict__.setdefault("held", {})

    def holds(self, scope: Hashable) -> bool:
        """Whether this thread keeps a context for ``scope`` (it then counts as used last)."""
        held = self._held()
        found = held.pop(scope, None)
        if found is not None:
            held[scope] = found
        return found is not None

    def context(self, scope: Hashable, wanted: dict[str, Wanted]) -> Any:
        """A ``cel.Context`` holding each wanted variable's value. A variable whose key is the one
        it was last set with keeps its converted value; a variable with no value must not be in
        the context (a rule reading it cannot be judged), so the context is started afresh when
        an earlier check left one there. One context per ``scope`` (a tool): every change makes
        the library copy all the values a context holds, so a context holds only what the rules
        of one tool read."""
        import cel  # imported once a pack has rules (policies.actions.compile_cel says why)

        held = self._held()
        context, slots = held.pop(scope, (None, {}))  # put back last: the scope used last is evicted last
        if context is None or any(w.key is None and name in slots for name, w in wanted.items()):
            context, slots = cel.Context(functions=self.functions or None), {}
            while len(held) >= self.max_scopes:
                del held[next(iter(held))]
        held[scope] = (context, slots)
        changed: dict[str, Any] = {}
        for name, w in wanted.items():
            if w.key is None:
                continue
            old = slots.get(name)
            # the same value, projected by the same read tree or one that reads all this one does
            if old is None or (old[0] != w.key and not _serves(old[0], w.key)) \
                    or not (old[2] is w.read or self._covers(old[2], w.read)):
                changed[name] = w.make()
                slots[name] = (w.key, w.anchor, w.read)
        if changed:
            try:
                try:
                    context.update(changed)
                except ValueError:
                    # A text the library cannot convert: a lone surrogate (a client's JSON may hold
                    # "\ud800") would otherwise leave every rule of the tool unjudged. As U+FFFD.
                    context.update({k: convertible(v) for k, v in changed.items()})
            except Exception:
                held.pop(scope, None)  # half updated: what the slots say is no longer true
                raise
        return context


def _serves(held: Hashable, key: Hashable) -> bool:
    """A slot holding every entry (``EVERY``) serves a key that picks some, the rest being equal."""
    return type(held) is tuple and len(held) == 3 and held[2] is EVERY and type(key) is tuple and len(key) == 3 \
        and held[:2] == key[:2]


def convertible(value: Any) -> Any:
    """``value`` with each lone surrogate of its texts (keys too) as U+FFFD, the rest as it is."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {convertible(k): convertible(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [convertible(v) for v in value]
    return value
