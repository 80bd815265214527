"""The peers rein is measured against in bench/proxy_overhead.py, each run as its own process.

    python bench/peers.py litellm PORT UPSTREAM_BASE_URL   # FastAPI endpoint calling litellm.acompletion
    python bench/peers.py bare PORT UPSTREAM_BASE_URL      # uvicorn + one aiohttp session, nothing else
"""
import os
import sys

import aiohttp
import orjson


# ---- the litellm reference peer ----------------------------------------------------------
def serve_litellm(port: int, upstream: str) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm
    import uvicorn
    from fastapi import FastAPI, Request
    from starlette.responses import Response, StreamingResponse

    litellm.suppress_debug_info = True
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = orjson.loads(await request.body())
        body["model"] = "openai/" + body["model"]
        if body.get("stream"):
            stream = await litellm.acompletion(api_base=upstream, api_key="sk-bench", **body)

            async def events():
                async for part in stream:
                    yield b"data: " + orjson.dumps(part.model_dump(exclude_none=True)) + b"\n\n"
                yield b"data: [DONE]\n\n"
            return StreamingResponse(events(), media_type="text/event-stream")
        resp = await litellm.acompletion(api_base=upstream, api_key="sk-bench", **body)
        return Response(orjson.dumps(resp.model_dump()), media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ---- the floor: a bare relay (uvicorn + one aiohttp session, no framework, no checks) ----------
def serve_bare(port: int, upstream: str) -> None:
    """What any Python proxy on uvicorn pays for the extra hop; rein's own cost is above this."""
    import uvicorn

    state: dict[str, aiohttp.ClientSession] = {}

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            return await send({"type": "lifespan.shutdown.complete"})
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        if scope["path"] == "/healthz":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            return await send({"type": "http.response.body", "body": b"ok"})
        session = state.get("s") or state.setdefault("s", aiohttp.ClientSession())
        async with session.post(upstream + "/chat/completions", data=body,
                                headers={"content-type": "application/json"}) as r:
            await send({"type": "http.response.start", "status": r.status,
                        "headers": [(b"content-type", r.headers["content-type"].encode())]})
            async for piece in r.content.iter_any():
                await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main() -> None:
    kind, port, upstream = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    {"litellm": serve_litellm, "bare": serve_bare}[kind](port, upstream)


if __name__ == "__main__":
    main()
