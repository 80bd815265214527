"""Plug-ins: your own detectors and refiners, named in a policy or given to the SDK.

A policy names them as ``"package.module:object"`` (a class is instantiated with no arguments)::

    plugins: ["mycompany.rein_rules:NoRefunds", "mycompany.rein_rules:Shouting"]

and ``Rein(..., detectors=[NoRefunds()], refiners=[Shouting()])`` takes the objects themselves.
Both reach the same builder. What an object is, is read from its shape (this module imports
nothing of rein's, so the policy schema can check plug-ins at load time):

- a **detector** has ``name`` and ``detect(dialogue) -> list[Detection]`` and says what it
  reports: ``emits`` (labels the policy's taxonomy holds) and/or ``taxonomy`` (entries it brings,
  ``ErrorType`` or the same fields as a dict; the policy's own entry of that label wins);
- a **refiner** has ``name``, ``applies(turn)``, ``check(turn, text)`` and ``async revise(turn, text)``.

A detector that reports a type neither the taxonomy nor the plug-in defines is refused here, at
load time, not dropped turn after turn:

>>> from policies.schema import Policy
>>> class NoRefunds:
...     name = "no_refunds"
...     emits = ["refund_request"]
...     def detect(self, dialogue): return []
>>> with_taxonomy(Policy(name="p"), [NoRefunds()])
Traceback (most recent call last):
...
policies.plugins.PluginError: detector 'no_refunds' reports 'refund_request', which the policy's taxonomy does not define (declare it in the detector's `taxonomy`, or add it to the policy)
>>> NoRefunds.taxonomy = [{"type": "refund_request", "plan": "Say refunds go through the web form."}]
>>> [e.label for e in with_taxonomy(Policy(name="p"), [NoRefunds()]).taxonomy]
['refund_request']
"""
from __future__ import annotations

import importlib
import inspect
import re
from typing import Any, Iterable, Literal

from policies.schema import BUILTIN_REFINERS, ErrorType, Policy

SPEC = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class PluginError(ValueError):
    """A plug-in that cannot be used; the message says which and why."""


def load(spec: str) -> Any:
    """The object ``"package.module:attr"`` names; a class is instantiated with no arguments."""
    if not re.match(SPEC, spec):
        raise PluginError(f"{spec!r} is not 'package.module:object'")
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as e:
        raise PluginError(f"{spec!r}: cannot import {module_name!r}: {type(e).__name__}: {e}") from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise PluginError(f"{spec!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if inspect.isclass(obj):
        try:
            obj = obj()
        except Exception as e:
            raise PluginError(f"{spec!r}: {attr}() failed: {type(e).__name__}: {e}") from e
    if kind(obj) is None:
        raise PluginError(f"{spec!r} is neither a detector (name, detect) nor a refiner "
                          f"(name, applies, check, async revise)")
    return obj


def kind(obj: Any) -> Literal["detector", "refiner"] | None:
    if callable(getattr(obj, "detect", None)):
        return "detector"
    if all(callable(getattr(obj, a, None)) for a in ("applies", "check", "revise")):
        return "refiner"
    return None


def resolve(policy: Policy, given: Iterable[Any] = (), of: str | None = None) -> list[Any]:
    """The policy's ``plugins`` (loaded) followed by ``given``; only those of kind ``of`` if set."""
    objs = [load(spec) for spec in policy.plugins] + list(given)
    return [o for o in objs if of is None or kind(o) == of]


def _name(obj: Any, what: str) -> str:
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise PluginError(f"{what} {type(obj).__name__}: `name` must be a lower-case identifier, not {name!r}")
    return name


def _entries(detector: Any) -> list[ErrorType]:
    out = []
    for raw in getattr(detector, "taxonomy", None) or []:
        try:
            out.append(raw if isinstance(raw, ErrorType) else ErrorType.model_validate(raw))
        except ValueError as e:
            raise PluginError(f"detector {detector.name!r}: bad taxonomy entry {raw!r}: {e}") from e
    return out


def with_taxonomy(policy: Policy, detectors: Iterable[Any]) -> Policy:
    """``policy`` with the taxonomy entries the detectors bring; raises PluginError when one
    reports a type nobody defines, or declares nothing at all."""
    added: list[ErrorType] = []
    labels = {e.label for e in policy.taxonomy}
    types = {e.type for e in policy.taxonomy}
    for det in detectors:
        name = _name(det, "detector")
        entries = _entries(det)
        emits = list(getattr(det, "emits", None) or [])
        if not entries and not emits:
            raise PluginError(f"detector {name!r} does not say what it reports: give it `emits` (labels of the "
                              f"policy's taxonomy) or `taxonomy` (the entries it brings)")
        for e in entries:
            if e.label not in labels:
                added.append(e)
                labels.add(e.label)
                types.add(e.type)
        for label in emits:
            if label not in labels and label not in types:
                raise PluginError(f"detector {name!r} reports {label!r}, which the policy's taxonomy does not define "
                                  f"(declare it in the detector's `taxonomy`, or add it to the policy)")
    if not added:
        return policy
    tools = {t.name for t in policy.recovery_tools}
    for e in added:
        if e.recovery_tool is not None and e.recovery_tool not in tools:
            raise PluginError(f"taxonomy entry {e.label!r} names recovery tool {e.recovery_tool!r}, "
                              f"which the policy's recovery_tools does not define")
    return policy.model_copy(update={"taxonomy": [*policy.taxonomy, *added]})


def declared_labels(detector: Any) -> set[str]:
    """What a plug-in detector said it reports (labels and bare types)."""
    out = set(getattr(detector, "emits", None) or [])
    for e in _entries(detector):
        out |= {e.label, e.type}
    return out


def refiner_order(policy: Policy, plugins: Iterable[Any]) -> list[str]:
    """The refiners' running order: the policy's list (each name built in or a plug-in's), then
    plug-ins it does not name, in the order given. Raises PluginError on an unknown name."""
    names: list[str] = []
    for r in plugins:
        name = _name(r, "refiner")
        if name in BUILTIN_REFINERS or name in names:
            raise PluginError(f"refiner {name!r} is defined twice (built-in: {', '.join(BUILTIN_REFINERS)})")
        if not inspect.iscoroutinefunction(getattr(r, "revise", None)):
            raise PluginError(f"refiner {name!r}: revise must be `async def`")
        names.append(name)
    known = [*BUILTIN_REFINERS, *names]
    for n in policy.refiners.refiners:
        if n not in known:
            raise PluginError(f"refiners.refiners names {n!r}, which is neither built in nor a plug-in "
                              f"(known: {', '.join(known)})")
    return list(policy.refiners.refiners) + [n for n in names if n not in policy.refiners.refiners]
