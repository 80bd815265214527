"""What is read from one text, kept by that text (a dialogue's earlier messages come back with every request)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, TypeVar

V = TypeVar("V")


class TextMemo(Generic[V]):
    """What ``build(text)`` returns, kept by the text itself: the proxy builds new message objects
    for every request, so a key by ``id()`` would never hit, and a dict compares the text on a hash
    match, so two texts never share an entry. Bounded by the characters its keys hold, not by
    entries (a few results of 200 KB weigh as much as thousands of short ones); the least recently
    used go first."""

    def __init__(self, max_chars: int):
        self.max_chars = max_chars
        self._data: OrderedDict[str, V] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()  # the proxy may read a big dialogue in a worker thread

    def get(self, text: str, build: Callable[[str], V]) -> V:
        with self._lock:
            if text in self._data:
                self._data.move_to_end(text)
                return self._data[text]
        value = build(text)
        if len(text) > self.max_chars // 4:
            return value  # one huge text is read each time rather than evict everything else
        with self._lock:
            if text not in self._data:
                self._data[text] = value
                self._held += len(text)
            while self._held > self.max_chars:
                old, _ = self._data.popitem(last=False)
                self._held -= len(old)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._held = 0

    def __len__(self) -> int:
        return len(self._data)
