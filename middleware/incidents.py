"""Incidents: failures the agent reported through a recovery tool the pack marks ``report: true``
(``report_internal_error``). The reply tells the user "I've reported it", so it must be true: each
one is a warning on the ``rein.incidents`` logger, the ``x-rein-incident`` header (and stream
trailer) that ``/metrics`` counts as ``rein_incidents_total``, and, with ``REIN_INCIDENT_WEBHOOK``
set, a JSON POST to the operator's webhook, sent off the reply's path.

    incidents = Incidents(webhook="https://ops.example/hooks/rein")
    incidents.report(Incident(tool="report_internal_error", kind="unavailable", summary="db down"), "default")
    header_value([incident])          # "report_internal_error/unavailable"
"""
from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from inception.base import Incident
from middleware.redact import redact

log = logging.getLogger("rein.incidents")


def header_value(incidents: list[Incident]) -> str:
    return ",".join(dict.fromkeys(f"{i.tool}/{i.kind}" for i in incidents))


class Incidents:
    """Hands each incident to the operators. ``webhook``: an http(s) URL the operator set; a POST
    that fails or takes longer than ``timeout_s`` is logged and dropped, never retried into the reply."""

    def __init__(self, webhook: str | None = None, timeout_s: float = 5.0):
        self.webhook = webhook
        self.timeout_s = timeout_s
        self._sending: set[asyncio.Task] = set()  # held so a task in flight is not collected

    def report(self, incident: Incident, policy: str) -> None:
        about = f" (tool {incident.failed_tool} returned: {incident.evidence})" if incident.evidence else ""
        log.warning("incident %s/%s under policy %s: %s%s", incident.tool, incident.kind, policy,
                    redact(incident.summary) or "(no summary)", redact(about))
        if self.webhook:
            body = {"event": "rein.incident", "policy": policy, "at": time.time(),
                    **incident.model_dump(mode="json")}
            try:
                task = asyncio.get_running_loop().create_task(self._post(body))
            except RuntimeError:  # no loop (a sync caller): the log line is the report
                return
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _post(self, body: dict) -> None:
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(self.webhook, json=body) as resp:
                    if resp.status >= 400:
                        log.warning("incident webhook answered HTTP %s", resp.status)
        except Exception as e:  # the operator's endpoint is down: the log line above still stands
            log.warning("incident webhook failed: %s", type(e).__name__)

    async def drain(self) -> None:
        """Wait for the webhook posts in flight (tests, shutdown)."""
        if self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)


__all__ = ["Incidents", "header_value"]
