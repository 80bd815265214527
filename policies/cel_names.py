"""What a CEL expression reads, found from its tokens: the names it uses, the fields it reads on
each, and the ones that do not exist. The CEL library compiles an expression but does not say
which fields it reads, and a typo'd field only fails at run time (as "no such key", which reads
like a record the dialogue never fetched): so a pack is checked here when it loads.

>>> scope = Scope(fields={"order": {"status": None, "total": None}}, lists=set(), tables=set())
>>> found = names_in('order.status == "open" && order.totl > 10', scope, {"args"})
>>> found.problems
["order has no field 'totl' (did you mean 'total'?)"]
>>> found.uses["order"]
{'status': '*', 'totl': '*'}

``uses`` maps each variable to what is read of it: ``ALL`` (the whole value), or a mapping from
field to what is read of that field, where ``"[]"`` stands for the elements of a list or the values
of a map (``order.items.exists(i, i.shipped_at < today)`` reads ``{"items": {"[]": {"shipped_at": ALL}}}``)
and ``"[args.x]"`` for the one value of a map at the key argument ``x`` gives
(``user.cards[args.card_id].kind`` reads ``{"cards": {"[args.card_id]": {"kind": ALL}}}``).
The engine converts only that much of a record into CEL: the conversion, not the evaluation, is
what a check costs.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

ALL = "*"  # a variable read whole (compared, passed to a function): the engine builds all of it
ARG_INDEX = "[args.{}]"  # the entry of a map at the key an argument of the call gives
SIZE = "[#]"  # how many entries a map or list has (``size(x)``): every entry's key, none of its value
_TOKEN = re.compile(r"""
    (?P<str>(?:[rRbB]{1,2})?(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[uU]?|0x[0-9a-fA-F]+)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>!?:.,()\[\]{}])
  | (?P<ws>\s+)
""", re.X)
_MACROS = {"all", "exists", "exists_one", "map", "filter"}
# literals, the `in` operator, and type names (`type(x) == double`)
_WORDS = {"true", "false", "null", "in", "int", "uint", "double", "bool", "string", "bytes", "list", "map",
          "null_type", "type"}
_NAMESPACES = {"math", "sets", "strings", "lists", "base64"}  # math.greatest(...): a function, not a variable


@dataclass
class Scope:
    fields: dict[str, dict[str, Any] | None]  # variable -> field name -> spec (None: fields unchecked)
    lists: set[str]                           # variables that are lists of records
    tables: set[str]


@dataclass
class Found:
    problems: list[str] = field(default_factory=list)
    uses: dict[str, Any] = field(default_factory=dict)  # variable -> what is read of it (see above)


def names_in(text: str, scope: Scope, reserved: set[str]) -> Found:
    toks = [(m.lastgroup or "", m.group()) for m in _TOKEN.finditer(text) if m.lastgroup != "ws"]
    walk = _Walk(toks, scope, reserved)
    walk.scan(0, len(toks))
    return walk.found


class _Walk:
    def __init__(self, toks: list[tuple[str, str]], scope: Scope, reserved: set[str]):
        self.toks, self.scope, self.found = toks, scope, Found()
        self.known = set(scope.fields) | reserved
        # comprehension variable -> (the variable it ranges inside, the path there, the elements' fields)
        self.ranging: dict[str, tuple[str | None, list[str], dict[str, Any] | None]] = {}

    def tok(self, k: int) -> str:
        return self.toks[k][1] if 0 <= k < len(self.toks) else ""

    def use(self, var: str | None, path: list[str], whole: bool) -> None:
        """Record that ``var`` is read at ``path`` (all of it there when ``whole``)."""
        if var is None or var not in self.known:
            return
        self.found.uses[var] = merge(self.found.uses.get(var, {}), _tree(path, whole))

    def scan(self, k: int, end: int) -> None:
        while k < end:
            kind, tok = self.toks[k]
            if kind == "id" and self.tok(k - 1) == "." and self.declares(k) and self.tok(k + 2) not in self.ranging:
                # a macro on what a call gave (`.map(x, x.price).exists(p, p > 10.0)`): its variable
                # is no unknown name; what it reads was read whole where the chain began (``chain``)
                self.ranging[self.tok(k + 2)] = (None, [], None)
            if kind != "id" or self.tok(k - 1) == "." or tok in _WORDS:
                k += 1
                continue
            if self.tok(k + 1) == "(" or (tok in _NAMESPACES and self.tok(k + 1) == "."):  # a function
                k += 1
                continue
            if tok in self.ranging:
                owner, path, fields = self.ranging[tok]
                element = True
            elif tok in self.known:
                owner, path, fields, element = tok, [], self.scope.fields.get(tok), tok not in self.scope.lists
            else:
                close = difflib.get_close_matches(tok, sorted(self.known), 1)
                self.found.problems.append(f"unknown name {tok!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                                           + f"; known: {', '.join(sorted(self.known))}")
                k += 1
                continue
            k = self.chain(k, end, tok, owner, list(path), fields, element)

    def chain(self, k: int, end: int, root: str, owner: str | None, path: list[str], fields: Any,
              element: bool) -> int:
        """Follow ``root.a[...].b.exists(x, ...)`` from token k; returns the index after it."""
        start, first, whole, spec = k, True, True, None
        if root == "tables":
            self.use(root, [], True)  # small and shared by the rules: passed whole
            whole = False
        k += 1
        while k + 1 < end and self.tok(k) in (".", "["):
            if self.tok(k) == "[":
                close = self.closing(k, end)
                self.scan(k + 1, close)  # what is inside the brackets is read too
                inner = [t for _, t in self.toks[k + 1:close]]
                k = close + 1
                if root == "tables":
                    break
                element = True  # an element of a list, or a value of a map: its fields follow
                # m[args.x]: the one entry an argument names (ARG_INDEX), else every element
                by_arg = len(inner) == 3 and inner[:2] == ["args", "."] and inner[2].isidentifier()
                path.append(ARG_INDEX.format(inner[2]) if by_arg else "[]")
                continue
            name = self.tok(k + 1)
            if self.tok(k + 2) == "(":  # a method or a macro
                if self.declares(k + 1) and k + 3 < end:
                    self.ranging[self.tok(k + 3)] = (owner, [*path, "[]"], fields)
                    # a call chained on its result (`.filter(...).all(p, p.x)`) reads elements
                    # through a variable no path names: the value is read whole
                    whole = self.tok(self.closing(k + 2, end) + 1) == "."
                    k += 3  # past the variable it declares: that is no use of it
                k += 2
                break
            if root == "tables" and first:
                if name not in self.scope.tables:
                    self.found.problems.append(f"tables has no table {name!r}; tables: "
                                               f"{', '.join(sorted(self.scope.tables)) or 'none'}")
                break
            spec = None
            if fields is not None and element:
                if name not in fields:
                    close = difflib.get_close_matches(name, sorted(fields), 1)
                    what = root if first else "that value"
                    self.found.problems.append(f"{what} has no field {name!r}"
                                               + (f" (did you mean {close[0]!r}?)" if close else ""))
                else:
                    spec = fields[name]
                    self.enum_check(k + 2, name, spec)
            path.append(name)
            fields = getattr(spec, "items", None) or None
            first, element = False, True
            k += 2
        if root != "tables":
            if whole and self.tok(start - 1) == "in" and getattr(spec, "type", None) == "map":
                self.use(owner, [*path, "[]"], False)  # `x in m`: the keys of m, not its values
            elif whole and self.sized(start, k):
                # every entry counts, whatever else is read of some of them (user.cards[args.card_id])
                self.use(owner, [*path, SIZE], False)
            else:
                self.use(owner, path, whole and not self.presence_only(start, k))
        return k

    def declares(self, k: int) -> bool:
        """Token k is a macro that declares a variable: ``exists(x, ...``."""
        if k + 2 >= len(self.toks):
            return False
        return self.tok(k) in _MACROS and self.tok(k + 1) == "(" and self.toks[k + 2][0] == "id" and self.tok(k + 3) == ","

    def sized(self, start: int, after: int) -> bool:
        """``size(x)``: the variable is read for how many entries it has."""
        return self.tok(start - 1) == "(" and self.tok(start - 2) == "size" and self.tok(after) == ")"

    def presence_only(self, start: int, after: int) -> bool:
        """``size(x)``, ``x == null``, ``x != null``: the variable is read for its size or presence only."""
        if self.tok(start - 1) == "(" and self.tok(start - 2) == "size" and self.tok(after) == ")":
            return True
        if after == start + 1:
            if self.tok(after) in ("==", "!=") and self.tok(after + 1) == "null":
                return True
            if self.tok(start - 1) in ("==", "!=") and self.tok(start - 2) == "null":
                return True
        return False

    def closing(self, k: int, end: int) -> int:
        depth = 0
        while k < end:
            if self.tok(k) in ("[", "("):
                depth += 1
            elif self.tok(k) in ("]", ")"):
                depth -= 1
                if depth == 0:
                    return k
            k += 1
        return end

    def enum_check(self, k: int, name: str, spec: Any) -> None:
        values = getattr(spec, "values", None)
        if not values or self.tok(k) not in ("==", "!=") or k + 1 >= len(self.toks) or self.toks[k + 1][0] != "str":
            return
        literal = self.tok(k + 1).lstrip("rRbB")[1:-1]
        if literal not in values:
            self.found.problems.append(f"{name} is never {literal!r}; its values: {', '.join(values)}")


def _tree(path: list[str], whole: bool) -> Any:
    node: Any = ALL if whole else {}
    for step in reversed(path):
        node = {step: node}
    return node


def merge(a: Any, b: Any) -> Any:
    """Two read trees as one: what either reads."""
    if a is ALL or b is ALL:
        return ALL
    out = dict(a)
    for key, sub in b.items():
        out[key] = merge(out[key], sub) if key in out else sub
    return out


def covers(a: Any, b: Any) -> bool:
    """Whether read tree ``a`` reads everything ``b`` does (a value projected by ``a`` serves ``b``).

    >>> covers({"flights": ALL, "cabin": ALL}, {"cabin": ALL}), covers({"cabin": ALL}, {"flights": {}})
    (True, False)
    """
    if a is ALL:
        return True
    if b is ALL or not isinstance(a, dict) or not isinstance(b, dict):
        return False
    return all((k in a and covers(a[k], sub)) or (k.startswith("[args.") and "[]" in a and covers(a["[]"], sub))
               or (k == SIZE and "[]" in a) for k, sub in b.items())


def widened(read: Any) -> Any:
    """``read`` with every entry picked by an argument (``[args.x]``) read as every entry (``[]``):
    a value projected by it serves any call's arguments (``covers``), so it can be converted before
    the call is known.

    >>> widened({"cards": {"[args.card_id]": {"kind": ALL}, "[#]": {}}})
    {'cards': {'[]': {'kind': '*'}, '[#]': {}}}
    """
    if not isinstance(read, dict):
        return read
    out: dict[str, Any] = {}
    for k, sub in read.items():
        if k.startswith("[args."):
            out["[]"] = merge(out.get("[]", {}), widened(sub))
        else:
            out[k] = merge(out[k], widened(sub)) if k in out else widened(sub)
    return out


def indexed_args(read: Any) -> tuple[str, ...]:
    """The arguments whose values pick map entries in a read tree (``ARG_INDEX`` keys)."""
    if not isinstance(read, dict):
        return ()
    return tuple(sorted({k[6:-1] for k in read if k.startswith("[args.")} | {a for sub in read.values() for a in indexed_args(sub)}))
