"""Mounts the OpenAI Responses and Anthropic Messages routes beside chat completions."""
from __future__ import annotations

from typing import Any


def install(app: Any, engine: Any, settings: Any) -> None:
    # Imported here: the routes build on app.ChatHandler, and app.py calls this while it loads.
    from starlette.routing import Route

    from middleware.proxy.anthropic import MessagesRoute, count_tokens
    from middleware.proxy.responses import ResponsesRoute

    responses = ResponsesRoute(engine, settings)
    app.state.responses = responses
    # Plain ASGI routes, like the chat route: none of FastAPI's per-request machinery.
    app.router.routes[1:1] = [
        Route("/v1/responses", responses, methods=["POST"], name="responses"),
        Route("/v1/responses/{response_id}", responses.stored, methods=["GET", "DELETE"], name="stored_response"),
        Route("/v1/messages", MessagesRoute(engine, settings), methods=["POST"], name="messages"),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"], name="count_tokens"),
    ]
