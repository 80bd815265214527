"""Faults on a real socket: an upstream that resets the connection mid-stream, a 429 with
Retry-After on a streaming request, and a client that hangs up mid-stream (rein must cancel its
upstream request and leave no task behind). After each, the server answers the next request."""
from __future__ import annotations

import asyncio
import socket
import struct

import httpx
import openai
import orjson
import pytest
import uvicorn

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import OpenAICompatModel
from middleware.proxy import create_app
from tests.fake_upstream import FakeUpstream, asgi_client, free_port, stream_chunks

POLICIES = ["passthrough", "structural", "default"]
URL = "/v1/chat/completions"


def chat(model: str = "m", stream: bool = False) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hello"}], "stream": stream}


class RawUpstream:
    """An OpenAI-compatible upstream written on raw sockets, to do what a polite server won't:
    ``reset`` sends one SSE chunk then a TCP RST; ``hold`` sends one chunk and waits, noting when
    rein closes the connection; anything else answers a whole stream."""

    def __init__(self, mode: str):
        self.mode = mode
        self.closed_by_peer = asyncio.Event()
        self.requests = 0

    async def __aenter__(self) -> "RawUpstream":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.base_url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        body = orjson.loads(await reader.readexactly(length))
        self.requests += 1
        chunks = [b"data: " + orjson.dumps(c) + b"\n\n" for c in stream_chunks(body)]
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")

        def chunk(data: bytes) -> bytes:
            return b"%x\r\n%s\r\n" % (len(data), data)

        if self.mode == "reset":
            writer.write(chunk(chunks[0]))
            await writer.drain()
            await asyncio.sleep(0.05)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            writer.transport.abort()
            return
        if self.mode == "hold":
            writer.write(chunk(chunks[0]))
            await writer.drain()
            if await reader.read(1) == b"":  # rein hung up on us
                self.closed_by_peer.set()
            writer.close()
            return
        for c in chunks + [b"data: [DONE]\n\n"]:
            writer.write(chunk(c))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()


def sse_data(text: str) -> list[bytes]:
    return [line[6:].encode() for line in text.split("\n") if line.startswith("data: ")]


@pytest.mark.parametrize("policy", POLICIES)
async def test_upstream_reset_mid_stream_ends_with_an_error_event(policy):
    async with RawUpstream("reset") as up:
        agent = OpenAICompatModel(up.base_url, timeout=5)
        app = create_app(Settings(policy=policy), Engine(agent, policy))
        async with asgi_client(app, timeout=10) as c:
            r = await asyncio.wait_for(c.post(URL, json=chat(stream=True)), 5)
            assert r.status_code == 200
            events = sse_data(r.text)
            assert orjson.loads(events[0])["choices"][0]["delta"]["role"] == "assistant"
            error = orjson.loads(events[-1])["error"]
            assert error["type"] and error["code"] and "upstream" in error["message"]
            assert b"[DONE]" not in events
            up.mode = "whole"  # the next request is served
            again = await c.post(URL, json=chat(stream=True))
            assert sse_data(again.text)[-1] == b"[DONE]" and b"hello" in again.content
        await agent.pool.close()


@pytest.mark.parametrize("policy", POLICIES)
async def test_upstream_429_on_a_stream_reaches_the_client_with_retry_after(policy):
    async with FakeUpstream() as up:
        agent = OpenAICompatModel(up.base_url, timeout=5)
        app = create_app(Settings(policy=policy), Engine(agent, policy))
        async with asgi_client(app) as http:
            r = await http.post(URL, json=chat("fake-429", stream=True))
            assert r.status_code == 429 and r.headers["retry-after"] == "7"
            assert r.json()["error"]["type"] == "rate_limit_error"
            client = openai.AsyncOpenAI(base_url="http://rein.test/v1", api_key="k", max_retries=0, http_client=http)
            with pytest.raises(openai.RateLimitError) as e:
                await client.chat.completions.create(**chat("fake-429", stream=True))
            assert e.value.response.headers["retry-after"] == "7"
            ok = await client.chat.completions.create(**chat())
            assert ok.choices[0].message.content == "Echo: hello"
        await agent.pool.close()


class LiveServer:
    """rein under a real uvicorn on loopback, on the test's own event loop."""

    def __init__(self, app):
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="off",
                                                    log_level="warning"))
        self.url = f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> "LiveServer":
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 10)


@pytest.mark.parametrize("policy", POLICIES)
async def test_client_disconnect_mid_stream_cancels_the_upstream_request(policy):
    async with RawUpstream("hold") as up:
        agent = OpenAICompatModel(up.base_url, timeout=30)
        app = create_app(Settings(policy=policy), Engine(agent, policy))
        async with LiveServer(app) as live:
            baseline = {t for t in asyncio.all_tasks()}
            async with httpx.AsyncClient(base_url=live.url, timeout=10) as c:
                async with c.stream("POST", URL, json=chat(stream=True)) as r:
                    assert r.status_code == 200
                    async for line in r.aiter_lines():
                        if line.startswith("data: "):
                            break  # got the first chunk: now hang up
            # rein closes its upstream connection instead of waiting out the 30 s timeout
            await asyncio.wait_for(up.closed_by_peer.wait(), 5)
            assert app.state.drain.in_flight == 0
            for _ in range(100):  # the request's tasks are gone, not parked
                leaked = {t for t in asyncio.all_tasks() if t not in baseline and not t.done()}
                leaked = {t for t in leaked if t is not asyncio.current_task()}
                if not leaked:
                    break
                await asyncio.sleep(0.02)
            assert not leaked, leaked
            up.mode = "whole"
            async with httpx.AsyncClient(base_url=live.url, timeout=10) as c:
                again = await c.post(URL, json=chat(stream=True))
                assert sse_data(again.text)[-1] == b"[DONE]"
        await agent.pool.close()
