"""What a simulation domain is: typed tools over an in-memory database, a written policy for
the agent, and hints the failure generators use to turn clean scenarios into failing ones.

A tool is a plain Python function whose first parameter is the database; the rest are typed
parameters, from which the JSON schema the agent sees is built. Example::

    retail = Domain.from_file("retail", Path("retail.yaml"))

    @retail.tool(writes=True)
    def cancel_pending_order(db: dict, order_id: str, reason: Literal["no_longer_needed"]) -> dict:
        '''Cancel an order that has not shipped yet.'''
        ...
"""
from __future__ import annotations

import copy
import hashlib
import inspect
import json
from pathlib import Path
from typing import Any, Callable

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model


class ToolError(Exception):
    """Raised by a tool for a refused or impossible request; the agent sees ``{"error": msg}``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolysemyHint(_Strict):
    phrase: str
    meanings: str
    covers: list[str] = Field(description="The write tools this phrase could mean")


class ShiftHint(_Strict):
    """A second goal a ``goal_shift`` user may turn to: one of ``owner``'s entities other than the task's."""
    owner: str
    target: str
    goal: str
    say: str
    actions: list[dict[str, Any]] = Field(description="Gold actions of the second goal: {tool, args}")
    communicate: list[str] = Field(default_factory=list)


class VariantHints(_Strict):
    """Domain knowledge the failure generators need (see ``sim_tests.failures``)."""
    vague_phrases: dict[str, str] = Field(default_factory=dict, description="entity kind -> vague phrase")
    owners: dict[str, str] = Field(default_factory=dict, description="entity kind -> 'table.owner_field'")
    describe: dict[str, str] = Field(default_factory=dict, description="entity kind -> field that describes one")
    polysemy: list[PolysemyHint] = Field(default_factory=list)
    unsupported_operations: list[str] = Field(default_factory=list)
    unsupported_parameters: list[str] = Field(default_factory=list)
    out_of_domain: list[str] = Field(default_factory=list)
    tool_failure_message: str = "503 Service Unavailable: the backend did not answer"
    goal_shifts: list[ShiftHint] = Field(default_factory=list, description="Second goals for goal_shift users")


class IntentRule(_Strict):
    """One rule of the deterministic scripted agent: a regex on the user's words -> a tool call."""
    when: str
    call: str
    args: dict[str, str] = Field(default_factory=dict)  # "$1" takes the regex group 1


class DomainData(_Strict):
    policy: str
    db: dict[str, Any]
    variants: VariantHints = Field(default_factory=VariantHints)
    scripted_agent: list[IntentRule] = Field(default_factory=list)


class Tool:
    def __init__(self, fn: Callable[..., Any], writes: bool):
        self.fn = fn
        self.name = fn.__name__
        self.writes = writes
        self.description = inspect.getdoc(fn) or ""
        params = list(inspect.signature(fn, eval_str=True).parameters.values())[1:]  # skip the db
        fields = {p.name: (p.annotation, ... if p.default is inspect.Parameter.empty else p.default)
                  for p in params}
        self.args_model = create_model(f"{self.name}_args", __config__=ConfigDict(extra="forbid"), **fields)
        self._schema = self._make_schema()  # built once: schema generation is the costly part

    def schema(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry for this tool (shared: treat it as read-only)."""
        return self._schema

    def _make_schema(self) -> dict[str, Any]:
        params = self.args_model.model_json_schema()
        params.pop("title", None)
        for prop in params.get("properties", {}).values():
            prop.pop("title", None)
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": params}}

    def __call__(self, db: dict[str, Any], arguments: dict[str, Any]) -> Any:
        try:
            args = self.args_model.model_validate(arguments)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'arguments'}: {x['msg']}" for x in e.errors())
            raise ToolError(f"invalid arguments for {self.name}: {problems}") from None
        return self.fn(db, **args.model_dump())


class Domain:
    def __init__(self, name: str, data: DomainData):
        self.name = name
        self.data = data
        self.tools: dict[str, Tool] = {}

    @classmethod
    def from_file(cls, name: str, path: Path) -> "Domain":
        return cls(name, DomainData.model_validate(yaml.safe_load(path.read_text())))

    @property
    def policy(self) -> str:
        return self.data.policy

    @property
    def variants(self) -> VariantHints:
        return self.data.variants

    def tool(self, writes: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.tools[fn.__name__] = Tool(fn, writes)
            return fn
        return register

    def tool_schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self.tools.values()]

    def new_db(self) -> dict[str, Any]:
        return copy.deepcopy(self.data.db)

    def environment(self, failures: list[Any] | None = None) -> "Environment":
        return Environment(self, failures or [])


def db_hash(db: dict[str, Any]) -> str:
    """A stable hash of a database state: key order and formatting do not matter."""
    return hashlib.sha256(orjson.dumps(db, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


class ToolCallRecord(BaseModel):
    name: str
    arguments: dict[str, Any] | str
    result: Any = None
    error: str | None = None
    injected: bool = False  # the failure was injected by the scenario, not caused by the call


class Environment:
    """One trial's world: a fresh database, the tools over it, and the scenario's injected faults."""

    def __init__(self, domain: Domain, failures: list[Any]):
        self.domain = domain
        self.db = domain.new_db()
        self.calls: list[ToolCallRecord] = []
        # tool name -> how many more calls fail, and with what message
        self._faults = {f.tool: [f.times, f.message or domain.variants.tool_failure_message] for f in failures}

    def hash(self) -> str:
        return db_hash(self.db)

    def execute(self, name: str, arguments: str | dict[str, Any]) -> str:
        """Run a tool call as the agent made it and return the tool message content (JSON)."""
        record = ToolCallRecord(name=name, arguments=arguments)
        self.calls.append(record)
        try:
            args = json.loads(arguments or "{}") if isinstance(arguments, str) else dict(arguments)
            if not isinstance(args, dict):
                raise ValueError("arguments are not a JSON object")
            record.arguments = args
        except ValueError as e:
            record.error = f"arguments are not valid JSON: {e}"
            return json.dumps({"error": record.error})
        tool = self.domain.tools.get(name)
        if tool is None:
            record.error = f"unknown tool {name!r}"
            return json.dumps({"error": record.error})
        fault = self._faults.get(name)
        if fault and fault[0] > 0:
            fault[0] -= 1
            record.error, record.injected = fault[1], True
            return json.dumps({"error": fault[1]})
        try:
            record.result = tool(self.db, args)
        except ToolError as e:
            record.error = str(e)
            return json.dumps({"error": record.error})
        return json.dumps(record.result, default=str)
