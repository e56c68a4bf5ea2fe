"""The queue between capture and compute, with its policy for when compute falls behind.

Capture threads never wait on the parser: ``put`` always returns at once. ``skip`` keeps
the newest snippets (labels stay close to real time; the oldest waiting snippet is
dropped); ``lag`` keeps every snippet and lets the labels fall behind, up to ``maxsize``
snippets or ``max_bytes`` of them, after which it drops the oldest too. Drops are
counted, not kept: a week-long stream holds at most ``maxsize`` snippets.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

POLICIES = ("skip", "lag")
DEFAULT_SIZE = {"skip": 1, "lag": 600}  # snippets waiting: only the newest, or 10 minutes of lag
DEFAULT_BYTES = 1 << 30  # and never more than 1 GiB of them (600 snippets of 4K would be 120 GB)
RECENT_DROPS = 32  # indices of the last drops, for reports and tests


def item_bytes(item) -> int:
    return int(getattr(item, "nbytes", 0))


class SnippetQueue(Generic[T]):
    def __init__(self, policy: str = "skip", maxsize: int | None = None, max_bytes: int | None = None):
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
        self.policy = policy
        self.maxsize = maxsize or DEFAULT_SIZE[policy]
        self.max_bytes = max_bytes or DEFAULT_BYTES
        self.dropped = 0  # how many were dropped
        self.dropped_bytes = 0
        self.recent_drops: deque[int] = deque(maxlen=RECENT_DROPS)  # their ``index``, newest last
        self.bytes = 0  # held now
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: T) -> None:
        """Never blocks. When full (in count or bytes), the oldest waiting items are dropped
        and counted; the newest is always kept."""
        size = item_bytes(item)
        with self._cond:
            while self._items and (len(self._items) >= self.maxsize or self.bytes + size > self.max_bytes):
                old = self._items.popleft()
                self.bytes -= item_bytes(old)
                self.dropped += 1
                self.dropped_bytes += item_bytes(old)
                self.recent_drops.append(getattr(old, "index", -1))
            self._items.append(item)
            self.bytes += size
            self._cond.notify()

    def close(self) -> None:
        """No more items: ``get_batch`` returns what is left, then an empty list."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def get_batch(self, max_items: int, timeout: float = 0.1) -> list[T] | None:
        """Up to ``max_items`` waiting items (all of them when compute is behind, so that
        it can batch); ``[]`` after ``timeout`` with nothing new; ``None`` once closed and
        drained."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if not self._items:
                return None if self._closed else []
            n = min(max_items, len(self._items))
            out = [self._items.popleft() for _ in range(n)]
            self.bytes -= sum(item_bytes(i) for i in out)
            return out

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
