"""Diagnoses cached by conversation prefix, in a bounded LRU (no per-conversation state grows)."""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Generic, TypeVar

import orjson

from inception.dialogue import content_key
from inception.tools import names_of
from policies.messages import Message

V = TypeVar("V")


def prefix_key(messages: list[Message], tools: list[dict[str, Any]] | None, digest: bytes | None = None) -> str:
    """A digest of the dialogue so far (each message's kind, text and calls: what the model's prompt
    reads of it) and the tool names: equal prefixes share a diagnosis. ``digest``: the messages'
    ``content_key`` when the caller has it."""
    h = hashlib.blake2b(digest if digest is not None else content_key(messages), digest_size=16)
    h.update(orjson.dumps(sorted(names_of(tools))))
    return h.hexdigest()


class LRU(Generic[V]):
    def __init__(self, maxsize: int = 1024):
        self.maxsize = maxsize
        self._data: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        if self.maxsize <= 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
