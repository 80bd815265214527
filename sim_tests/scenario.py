"""Scenarios and suites: pydantic models loaded from YAML (``extra="forbid"``), with a JSON Schema.

A scenario is one task in one domain: who the user is and what they want, the failure to
inject, and what success looks like. A suite file holds ``scenarios: [...]``; a file holding a
single scenario, or a folder of such files, is a suite too. Example::

    suite = load_suite("retail")               # a shipped suite, or a path
    suite.scenarios[0].label                   # "clean", "vague_reference", ...
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SUITES = Path(__file__).parent / "suites"

# The error types of the `default` policy a scenario can inject (type -> subtypes).
FAILURE_TYPES: dict[str, tuple[str, ...]] = {
    "ambiguous_request": ("vague_reference", "polysemy", "contradiction"),
    "unsupported_request": ("unsupported_operation", "unsupported_parameter", "out_of_domain"),
    "tool_failure": (),
    "action_loop": ("repeated_user_turn",),
}
Recovery = Literal["clarify", "decline", "transfer", "retry"]
# Behaviour traits of the simulated user (see ``sim_tests.traits``).
TraitName = Literal["withholding", "incremental", "informal", "impatient", "tangent", "goal_shift", "role"]
TRAITS: tuple[str, ...] = TraitName.__args__


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rule(_Strict):
    if_agent: str = Field(description="Regex (case-insensitive) searched in the agent's last reply")
    say: str


class ScriptTurn(_Strict):
    """One user turn of the scripted simulator: the first matching rule wins, else ``say``."""
    say: str | None = None
    rules: list[Rule] = Field(default_factory=list)


class Action(_Strict):
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class GoalShift(_Strict):
    """The second goal of a ``goal_shift`` user: what they say when the goal changes, and what it needs."""
    goal: str
    say: str
    actions: list[Action] = Field(default_factory=list)
    communicate: list[str] = Field(default_factory=list)


class UserProfile(_Strict):
    persona: str = "A customer who is polite and brief."
    goal: str
    known: dict[str, str] = Field(default_factory=dict, description="Facts the user knows and may share")
    unknown: list[str] = Field(default_factory=list, description="Things the user does not know")
    script: list[ScriptTurn] = Field(default_factory=list, description="Turns for the scripted simulator")
    traits: list[TraitName] = Field(default_factory=list, description="Behaviour traits (sim_tests.traits)")
    seed: int = Field(0, description="Seeds the traits' choices (typos, remarks, who the user asks for)")
    patience: int = Field(2, ge=1, description="impatient: turns without progress before the user complains")
    shift: GoalShift | None = Field(None, description="goal_shift: the goal the user changes to")


class Target(_Strict):
    """The entity the goal is about; the failure generators rewrite references to it."""
    kind: str
    id: str
    owner: str


class Failure(_Strict):
    type: str
    subtype: str | None = None
    turn: int = Field(1, ge=1, description="The user turn (1-based) where the failure shows")
    strategy: str = Field("", description="How the failure is worded or injected")
    instruction: str = Field("", description="What the LLM user simulator is told to do")
    tool: str | None = Field(None, description="tool_failure: the tool that fails")
    times: int = Field(1, ge=1, description="tool_failure: how many calls fail before it works")
    message: str | None = None


class Criteria(_Strict):
    actions: list[Action] = Field(default_factory=list, description="Gold actions; [] means the DB must not change")
    communicate: list[str] = Field(default_factory=list, description="Text the agent's replies must contain")
    recovery: Recovery | None = None
    ignore_db: bool = Field(False, description="Skip the DB check (e.g. a transfer may or may not follow)")


class Scenario(_Strict):
    id: str
    domain: str
    description: str = ""
    user: UserProfile
    target: Target | None = None
    failure: Failure | None = None
    criteria: Criteria = Field(default_factory=Criteria)
    max_turns: int = Field(8, ge=1, description="Most user turns before the dialogue is cut")
    source: str | None = Field(None, description="The clean scenario this variant was generated from")

    @property
    def label(self) -> str:
        """The error type as reports group it: the subtype, the type, or ``clean``."""
        if self.failure is None:
            return "clean"
        return self.failure.subtype or self.failure.type

    @property
    def trait(self) -> str:
        """The user's traits as reports group them: ``informal``, ``informal+impatient``, ``cooperative``."""
        return "+".join(self.user.traits) or "cooperative"


class ScorerRef(_Strict):
    """A scorer and the arguments its factory is called with (``sim_tests.scorers``)."""
    name: str = Field(description="A registered scorer, or 'package.module:factory'")
    args: dict[str, Any] = Field(default_factory=dict)


class Suite(_Strict):
    name: str
    description: str = ""
    scorers: list[str | ScorerRef] = Field(default_factory=list, description=(
        "The scorers a trial must pass, each a name or {name, args}; unset: the built-in five "
        "(db_state, communicated, recovery, turn_limit, patience)."))
    scenarios: list[Scenario]

    def scorer_specs(self) -> list[Any]:
        return [s if isinstance(s, str) else s.model_dump() for s in self.scorers]


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and each field."""


def schema() -> dict[str, Any]:
    """The JSON Schema of a suite file (for editors)."""
    return Suite.model_json_schema()


def _problems(scenario: Scenario) -> list[tuple[str, str]]:
    """References pydantic cannot check: the domain, tool names and failure types."""
    from sim_tests.domains import SHIPPED, get_domain

    if scenario.domain not in SHIPPED:
        return [("domain", f"unknown domain {scenario.domain!r} (known: {', '.join(SHIPPED)})")]
    tools = get_domain(scenario.domain).tools
    out = []
    for i, action in enumerate(scenario.criteria.actions):
        if action.tool not in tools:
            out.append((f"criteria.actions.{i}.tool", f"unknown tool {action.tool!r} in domain {scenario.domain}"))
    failure = scenario.failure
    if failure is not None:
        if failure.type not in FAILURE_TYPES:
            out.append(("failure.type", f"unknown failure type {failure.type!r} (known: {', '.join(FAILURE_TYPES)})"))
        elif failure.subtype is not None and failure.subtype not in FAILURE_TYPES[failure.type]:
            out.append(("failure.subtype", f"{failure.type} has no subtype {failure.subtype!r}"))
        if failure.tool is not None and failure.tool not in tools:
            out.append(("failure.tool", f"unknown tool {failure.tool!r} in domain {scenario.domain}"))
        if failure.type == "tool_failure" and failure.tool is None:
            out.append(("failure.tool", "a tool_failure names the tool that fails"))
    if "goal_shift" in scenario.user.traits and scenario.user.shift is None:
        out.append(("user.shift", "a goal_shift user needs the goal it shifts to (rein sim generate --traits "
                                  "goal_shift fills it from the domain)"))
    for i, action in enumerate(scenario.user.shift.actions if scenario.user.shift else []):
        if action.tool not in tools:
            out.append((f"user.shift.actions.{i}.tool", f"unknown tool {action.tool!r} in domain {scenario.domain}"))
    return out


def parse_suite(data: Any, source: str, name: str | None = None) -> Suite:
    """Validate a suite (or a single scenario) mapping; errors name ``source`` and each field."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario file is a YAML mapping")
    single = "scenarios" not in data
    raw = {"name": name or Path(source).stem, "scenarios": [data]} if single else data
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as e:
        lines = [f"{source}: invalid scenario file"]
        for err in e.errors():
            loc = list(err["loc"])[2:] if single and loc_is_scenario(err["loc"]) else list(err["loc"])
            lines.append(f"  {'.'.join(map(str, loc)) or '(top level)'}: {err['msg']}")
        raise ScenarioError("\n".join(lines)) from None
    lines = []
    for i, sc in enumerate(suite.scenarios):
        prefix = "" if single else f"scenarios.{i}."
        lines += [f"  {prefix}{where}: {msg}" for where, msg in _problems(sc)]
    if lines:
        raise ScenarioError("\n".join([f"{source}: invalid scenario file"] + lines))
    return suite


def loc_is_scenario(loc: tuple) -> bool:
    return len(loc) >= 2 and loc[0] == "scenarios"


# libyaml's loader when present: a generated suite of hundreds of scenarios loads in a fraction of the time.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(), Loader=_LOADER)
    except (OSError, yaml.YAMLError) as e:
        raise ScenarioError(f"{path}: cannot read: {e}") from None


def shipped_suites() -> list[str]:
    return sorted(p.stem for p in SUITES.glob("*.yaml"))


def suite_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.exists():
        return path
    shipped = SUITES / f"{name_or_path}.yaml"
    if shipped.exists():
        return shipped
    raise ScenarioError(f"unknown suite {name_or_path!r}: not a file or folder, and not one of "
                        f"{', '.join(shipped_suites())}")


def dump_suite(suite: Suite) -> str:
    """YAML for a suite, without fields left at their defaults (short, diffable files)."""
    return yaml.safe_dump(suite.model_dump(mode="json", exclude_defaults=True), sort_keys=False,
                          allow_unicode=True, width=110)
