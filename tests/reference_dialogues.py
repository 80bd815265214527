"""Dialogues for the vague-reference tests: OpenAI-style messages built in a line each, and what the
detector finds in them (``detect``)."""
from __future__ import annotations

import json

from inception.dialogue import Dialogue
from inception.references import VagueReference
from policies.messages import parse_messages


def user(text):
    return {"role": "user", "content": text}


def agent(text):
    return {"role": "assistant", "content": text}


def call(name, args, result, cid):
    return [{"role": "assistant", "content": None, "tool_calls": [
                {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]},
            {"role": "tool", "tool_call_id": cid, "content": json.dumps(result)}]


def detect(messages):
    return VagueReference().detect(Dialogue.of(parse_messages(messages), []))
