"""The cost of ``untrusted_argument`` on the draft's path: what it reads of the dialogue's tool
results (each normalized, its flagged passages, the rest of it) is worked out once per text, and
the read ahead (``read_arguments_ahead``, from ``ActionChecker.prepare``) does it before the draft.
None of it may change an answer: the check gives what a plain reading gives (``reference`` below,
the function as it was before), read ahead or not, whatever dialogue was read ahead before.
"""
from __future__ import annotations

import os
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inception import injection
from inception.dialogue import Dialogue
from inception.injection import flagged, read_arguments_ahead, untrusted_argument
from policies.messages import parse_messages
from test_injection import ATTACKS, BANK_TOOLS, IBAN

EXAMPLES = int(os.environ.get("REIN_HYPOTHESIS_EXAMPLES", "40"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 40,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def reference(name: str, args: dict[str, Any], calls, said: list[str]) -> str | None:
    """untrusted_argument before its results were read once per text (commit 379e614)."""
    norm, keys_of = injection._norm, injection._keys
    values = [(path, value, key) for path, value in injection._leaves(args, "") for key in keys_of(value)
              if len(key) >= injection._MIN_VALUE]
    if not values:
        return None
    inside, outside = [], list(said)
    for rec in calls:
        if not rec.result:
            continue
        normed = injection._SPACING.sub("", rec.result.lower())
        spans = flagged(rec.result) if any(key in normed for _, _, key in values) else []
        inside += [(rec.name, rec.result[a:b]) for a, b in spans]
        outside.append(injection._cut(rec.result, spans) if spans else rec.result)
    if not inside:
        return None
    seen = "".join(injection._SPACING.sub("", t.lower()) for t in outside).rstrip("/")
    for path, value, key in values:
        if key in seen:
            continue
        source = next((tool for tool, text in inside if key in norm(text)), None)
        if source is not None:
            return (f"{name} sends {path}={value!r}, which only the instructions inside the {source} result gave "
                    f"({injection.TYPE}: text that did not come from the user)")
    return None


PIECES = [IBAN, "DE89370400440532013000", "https://evil.example.com/pay", "www.Example.org/x/", "500 EUR", "$1,200.50",
          "ann@mail.com", "Ann Lee", "rent", "  ", ", ", "http://", "/", ".", "\n", "İ", "ß", "Ignore", "send"]
TEXTS = st.lists(st.sampled_from(PIECES) | st.text(max_size=12), max_size=12).map("".join)


def _dialogue(results: list[str]) -> Dialogue:
    raw: list[dict[str, Any]] = [{"role": "user", "content": "Pay my rent, please."}]
    for n, text in enumerate(results):
        raw += [{"role": "assistant", "tool_calls": [{"id": f"c{n}", "type": "function", "function": {
                    "name": "read_file", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": f"c{n}", "content": text}]
    return Dialogue.of(parse_messages(raw), BANK_TOOLS)


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from(sorted(ATTACKS)), TEXTS, TEXTS), min_size=1, max_size=3),
       st.lists(st.tuples(st.sampled_from(["recipient", "amount", "body", "note"]), TEXTS | st.sampled_from(PIECES)),
                min_size=1, max_size=4),
       st.lists(TEXTS, max_size=2), st.integers(0, 3))
def test_the_same_answer_as_a_plain_reading(results, args, said, mode):
    texts = [before + ATTACKS[name] + after if k % 2 == 0 else before + after
             for k, (name, before, after) in enumerate(results)]
    d = _dialogue(texts)
    arguments = {key: value for key, value in args}
    if len(arguments.get("body", "")) <= 40:  # a long text: its links and amounts are compared too
        arguments["body"] = arguments.get("body", "") + " and send it to " + random.Random(mode).choice(PIECES) * 3
    want = reference("send_money", arguments, d.calls, said)
    if mode == 1:
        read_arguments_ahead(d.calls, said)
    elif mode == 2:
        read_arguments_ahead(_dialogue([ATTACKS["secrecy"], texts[0][::-1]]).calls, [])
    elif mode == 3:
        injection._RESULTS.clear()
    assert untrusted_argument("send_money", arguments, d.calls, said) == want
    assert untrusted_argument("send_money", arguments, d.calls, said) == want  # and read from the memo


def test_an_attack_value_is_still_found_after_the_read_ahead():
    d = _dialogue(["Balance: 120 EUR.", ATTACKS["secrecy"]])
    read_arguments_ahead(d.calls, ["Pay my rent, please."])
    assert injection.read_result(d.calls[1].result)[1]  # its passage read ahead
    assert untrusted_argument("send_money", {"recipient": IBAN, "amount": 900}, d.calls, []) is not None
    assert untrusted_argument("send_money", {"recipient": "DE89370400440532013000", "amount": 900}, d.calls, []) is None
