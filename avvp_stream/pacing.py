"""The queue between capture and compute, with its policy for when compute falls behind.

Capture threads never wait on the parser: ``put`` always returns at once. ``skip`` keeps
the newest snippets (labels stay close to real time; the oldest waiting snippet is
dropped); ``lag`` keeps every snippet and lets the labels fall behind, up to ``maxsize``
snippets, after which it drops the oldest too. Every drop is counted.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

POLICIES = ("skip", "lag")
DEFAULT_SIZE = {"skip": 1, "lag": 600}  # snippets waiting: only the newest, or 10 minutes of lag


class SnippetQueue(Generic[T]):
    def __init__(self, policy: str = "skip", maxsize: int | None = None):
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
        self.policy = policy
        self.maxsize = maxsize or DEFAULT_SIZE[policy]
        self.dropped: list[T] = []  # what was dropped, oldest first
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: T) -> None:
        """Never blocks. When full, the oldest waiting item is dropped (and kept in
        ``dropped`` for the report)."""
        with self._cond:
            if len(self._items) >= self.maxsize:
                self.dropped.append(self._items.popleft())
            self._items.append(item)
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
            return [self._items.popleft() for _ in range(n)]

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
