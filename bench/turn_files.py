"""Which of rein's files one chat turn crosses, and how often control enters each (issue 21's target:
at most 12 files, each entered at most twice).

One non-streamed ``POST /v1/chat/completions`` whose last tool result is an error (so diagnosis
finds a tool failure and plans) goes through the real proxy app in-process (httpx ASGITransport;
the upstream is the package's ScriptedModel double), once to warm up and once under
``sys.setprofile``.

How it counts (printed with the figures):
- a file is one of ours: under policies/, inception/, refiners/ or middleware/;
- the orchestration files are the route handler's and the pipeline's: middleware/proxy/** and
  middleware/pipeline/**. A call from an orchestration file into a function of another of our
  files is an *entry* into that file. So is a call into one of our files from no file of ours
  (the web framework calling the route, LangGraph or the event loop starting a stage);
- a call made from inside a non-orchestration file (a detector calling a helper, a pydantic model,
  the model wrapper calling the double) is that file's own work: it counts for nothing, and the
  files it reaches are not "crossed";
- a coroutine resumed after an await is not a new entry (each frame counts once).

    python bench/turn_files.py                # structural policy
    python bench/turn_files.py --policy default --verbose
    python bench/turn_files.py --spine            # only the route and the pipeline are orchestration
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_upstream import asgi_client  # noqa: E402

from middleware.config import Settings  # noqa: E402
from middleware.engine import Engine  # noqa: E402
from middleware.models import ScriptedModel  # noqa: E402
from middleware.proxy import create_app  # noqa: E402

PACKAGES = ("policies", "inception", "refiners", "middleware")
# The turn's spine: the route (its generic part and the chat instance) and the pipeline package.
SPINE = ("middleware/proxy/routes/route.py", "middleware/proxy/routes/chat.py", "middleware/pipeline")
# The count the issue was filed with (the default): every file under proxy/ is orchestration.
WIDE = ("middleware/proxy/", "middleware/pipeline")
CALL = {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
    "name": "get_order", "arguments": json.dumps({"order_id": "A1"})}}]}
BODY = {"model": "m", "messages": [
    {"role": "user", "content": "Where is my order A1?"}, CALL,
    {"role": "tool", "tool_call_id": "c1", "content": json.dumps({"status": 500, "message": "inventory unavailable"})}],
    "tools": [{"type": "function", "function": {"name": "get_order", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}]}
REPLY = "Sorry, the order service is down; please try again in a few minutes."


def ours(filename: str) -> str | None:
    """The repository-relative path of one of our files, or None."""
    try:
        rel = Path(filename).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return None
    return rel if rel.split("/", 1)[0] in PACKAGES else None


class Entries:
    """A ``sys.setprofile`` hook that records entries into our files (see the module docstring)."""

    def __init__(self, spine: tuple[str, ...] = SPINE) -> None:
        self.spine = spine
        self.into_spine = spine == SPINE  # as first counted (WIDE): only calls from orchestration
        self.order: list[str] = []
        self.count: Counter[str] = Counter()
        self.callers: dict[str, Counter[str]] = {}
        self._seen: set[int] = set()
        self._keep: list = []  # frames kept alive, so an id is never reused while counting
        self._files: dict[str, str | None] = {}

    def _ours(self, filename: str) -> str | None:
        if filename not in self._files:
            self._files[filename] = ours(filename)
        return self._files[filename]

    def __call__(self, frame, event, arg) -> None:
        if event != "call" or id(frame) in self._seen:
            return
        self._seen.add(id(frame))
        self._keep.append(frame)
        callee = self._ours(frame.f_code.co_filename)
        if callee is None:
            return
        caller, back = None, frame.f_back
        while back is not None and caller is None:
            caller = self._ours(back.f_code.co_filename)
            back = back.f_back
        if caller == callee:
            return
        if caller is not None and not caller.startswith(self.spine) and not (self.into_spine and callee.startswith(self.spine)):
            return  # a worker's own work (a guard handing the request on to the route is an entry into the spine)
        if callee not in self.count:
            self.order.append(callee)
        self.count[callee] += 1
        self.callers.setdefault(callee, Counter())[caller or "(no file of ours)"] += 1


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="structural")
    parser.add_argument("--spine", action="store_true",
                        help="a narrower count: only the route (route.py, chat.py) and the pipeline package are "
                             "orchestration; a worker's call into them (a guard calling the route) is an entry too")
    parser.add_argument("--verbose", action="store_true", help="who entered each file, and how often")
    args = parser.parse_args()
    agent = ScriptedModel([REPLY, REPLY])
    app = create_app(Settings(policy=args.policy), Engine(agent, args.policy))
    async with asgi_client(app) as client:
        warm = await client.post("/v1/chat/completions", json=BODY)
        assert warm.status_code == 200, warm.text
        entries = Entries(SPINE if args.spine else WIDE)
        sys.setprofile(entries)
        try:
            resp = await client.post("/v1/chat/completions", json=BODY)
        finally:
            sys.setprofile(None)
    assert resp.status_code == 200, resp.text
    print(f"one non-streamed chat turn, policy {args.policy}: x-rein-diagnosis {resp.headers.get('x-rein-diagnosis')}, "
          f"x-rein-incepted {resp.headers.get('x-rein-incepted', '-')}")
    where = ("route.py, chat.py, middleware/pipeline/** (and calls into them from a worker)" if args.spine
             else "middleware/proxy/**, middleware/pipeline/**")
    print("counted: calls into a file of policies/ inception/ refiners/ middleware/ made from the orchestration "
          f"({where}) or from no file of ours; a file's own calls into others "
          "are its work, not entries; a resumed coroutine is not a new entry\n")
    print(f"  {'#':>2}  {'file':<44} entries")
    for i, f in enumerate(entries.order, 1):
        line = f"  {i:>2}  {f:<44} {entries.count[f]:>4}"
        if args.verbose:
            line += "   from " + ", ".join(f"{c} x{n}" for c, n in entries.callers[f].most_common())
        print(line)
    areas = Counter(next((a for a in ("middleware/proxy", "middleware/pipeline") if f.startswith(a)), f.split("/")[0])
                    for f in entries.order)
    print("\nby folder: " + ", ".join(f"{area} {n}" for area, n in areas.most_common()))
    worst = max(entries.count.items(), key=lambda kv: kv[1])
    print(f"files crossed {len(entries.order)} (target <= 12); most entries {worst[1]} ({worst[0]}; target <= 2); "
          f"files entered more than twice: {sum(1 for n in entries.count.values() if n > 2)}")


if __name__ == "__main__":
    asyncio.run(main())
