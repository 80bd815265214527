"""Policy hot-reload, only ever from the path the operator configured (``--policy FILE``).

Triggers: SIGHUP, and optionally a check of the file's mtime every ``watch_s`` seconds (a
Kubernetes ConfigMap update swaps the mounted file without any signal). A file that fails to
load keeps the running policy and says why in the log: a typo never takes the proxy down.
Shipped policy names are not files the operator edits, so they are never reloaded.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from policies.loader import PolicyError, parse_policy

log = logging.getLogger("rein.ops")


class PolicyReloader:
    def __init__(self, engine: Any, configured: str, watch_s: float = 0.0):
        self.engine = engine
        self.path = Path(configured) if Path(configured).is_file() else None
        self.watch_s = watch_s
        self._mtime = self._stat()
        self.reloads = 0

    def _stat(self) -> float | None:
        try:
            return self.path.stat().st_mtime if self.path is not None else None
        except OSError:
            return None

    def reload(self) -> bool:
        """Load the configured file again and swap it in; False (old policy kept) on any error."""
        if self.path is None:
            return False
        self._mtime = self._stat()
        try:
            policy = parse_policy(self.path.read_text(), str(self.path))
            self.engine.reload(policy)  # built before it is swapped in: one that cannot build is refused
        except (OSError, PolicyError, ValueError) as e:
            log.error("rein: policy reload from %s refused, keeping %r: %s", self.path, self.engine.default_policy.name, e)
            return False
        self.reloads += 1
        log.warning("rein: policy %r reloaded from %s", policy.name, self.path)
        return True

    def changed(self) -> bool:
        return self.path is not None and self._stat() != self._mtime

    def start(self) -> None:
        """Hook SIGHUP and start the mtime watch; called once the server's loop runs."""
        if self.path is None:
            return
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        if self.watch_s > 0:
            self._task = loop.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.watch_s)
            if self.changed():
                self.reload()
