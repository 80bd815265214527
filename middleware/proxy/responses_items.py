"""rein's typed messages back to OpenAI Responses input items: the inverse of
``responses_map.messages_of`` (tests/test_protocol_maps.py holds the round trip)."""
from __future__ import annotations

from typing import Any

from policies.messages import Message
def items_of(messages: list[Message]) -> list[dict[str, Any]]:
    """Typed messages back to Responses input items (what ``messages_of`` reads)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        fields = m.model_dump(exclude_unset=True, mode="json")
        role = fields.pop("role")
        if role == "tool":
            out.append({"type": "function_call_output", "call_id": fields.pop("tool_call_id"),
                        "output": _parts_out(fields.pop("content", None), "input_text"), **fields})
            continue
        calls = fields.pop("tool_calls", None) or []
        content = fields.pop("content", None)
        if content is not None or not calls:
            kind = "output_text" if role == "assistant" else "input_text"
            out.append({"type": "message", "role": role, "content": _parts_out(content, kind), **fields})
        for call in calls:
            fn = call.pop("function")
            call.pop("type", None)
            out.append({"type": "function_call", "call_id": call.pop("id"), "name": fn["name"],
                        "arguments": fn.get("arguments", "{}"), **call})
    return out


def _parts_out(content: Any, text_kind: str) -> Any:
    if not isinstance(content, list):
        return content
    out = []
    for p in content:
        if p.get("type") == "text":
            out.append({**p, "type": text_kind})
        elif p.get("type") == "image_url":
            image = dict(p["image_url"])
            url = image.pop("url", None)
            out.append({"type": "input_image", **({"image_url": url} if url else {}), **image,
                        **{k: v for k, v in p.items() if k not in ("type", "image_url")}})
        elif p.get("type") == "file":
            out.append({"type": "input_file", **p["file"], **{k: v for k, v in p.items() if k not in ("type", "file")}})
        else:
            out.append(p)
    return out

