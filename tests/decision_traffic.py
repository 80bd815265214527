"""Traffic for the decision log's tests: three dialogues where a rule of ``structural`` fires (a
vague reference, a failed tool, a wrong amount in the reply) and one where none does, each with
the reply the scripted agent gives, sent through the proxy with the official OpenAI client."""
from __future__ import annotations

import json

import httpx
import openai

TOOLS = [{"type": "function", "function": {"name": "get_order", "description": "Look up an order.", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}},
    {"type": "function", "function": {"name": "cancel_order", "description": "Cancel an order.", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}]


def _call(cid: str, name: str, order: str) -> dict:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps({"order_id": order})}}]}


VAGUE = [{"role": "system", "content": "You are the shop's support agent."},
         {"role": "user", "content": "What are my orders?"},
         {"role": "assistant", "content": "You have W1001 (desk lamp) and W1002 (office chair)."},
         {"role": "user", "content": "cancel it"}]
FAILED = [{"role": "system", "content": "You are the shop's support agent."},
          {"role": "user", "content": "Where is order W2002?"}, _call("c1", "get_order", "W2002"),
          {"role": "tool", "tool_call_id": "c1", "content": "Error: order service unavailable (503)"}]
AMOUNT = [{"role": "system", "content": "You are the shop's support agent."},
          {"role": "user", "content": "What did order W3003 cost?"}, _call("c1", "get_order", "W3003"),
          {"role": "tool", "tool_call_id": "c1", "content": json.dumps(
              {"order_id": "W3003", "status": "delivered", "total": 42.5})}]
CLEAN = [{"role": "user", "content": "Hello there"}]
# (dialogue, the agent's reply, the rule that fires under `structural`)
TRAFFIC = [
    (VAGUE, "Done, I cancelled it.", "detect:ambiguous_request/vague_reference"),
    (FAILED, "Sorry, I could not reach the order service.", "detect:tool_failure"),
    (AMOUNT, "Order W3003 was delivered; it came to $24.50.", "refine:factuality/amount"),
    (CLEAN, "Hi! How can I help?", None),
]
REPLIES = [reply for _, reply, _ in TRAFFIC]


def openai_client(app, api_key: str = "unused") -> openai.AsyncOpenAI:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rein.test/v1")
    return openai.AsyncOpenAI(base_url="http://rein.test/v1", api_key=api_key, http_client=http, max_retries=0)


async def send_all(app) -> list:
    """Each dialogue once; the raw responses (headers and all)."""
    client = openai_client(app)
    out = []
    for messages, _, _ in TRAFFIC:
        out.append(await client.chat.completions.with_raw_response.create(model="m", messages=messages, tools=TOOLS))
    await client.close()
    return out
