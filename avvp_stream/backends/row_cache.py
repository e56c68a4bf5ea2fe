"""Keeps each snippet's half of the folded head (``head/folded.py``) across
windows. A sliding window shares all but one snippet with the previous one, and a batch
of offline windows shares almost all of its snippets, so each snippet's input
projections and attention keys/values are computed once instead of once per window.

Rows are keyed by the snippet's identity when the caller names it (the parser does: its
stream and the snippet's place in it), else by the snippet's input bytes. HAN has no
positional encoding, so a snippet's half depends on its features only, and a hit returns
exactly what a recompute would.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Plan:
    inputs: list[np.ndarray]  # each feature of the rows to compute, (N, D)
    known: np.ndarray  # (M, *row_shape)
    index: np.ndarray  # (B, T) int64 into [known; computed]
    keys: list[Hashable]  # of the rows to compute


class RowCache:
    """Snippet rows (``row_shape`` arrays) by snippet key, in one preallocated table;
    ``capacity`` snippets are kept, least recently used first out (it grows when one call
    brings more). A call is ``plan`` (which rows are known, which must be computed), then
    ``keep`` the computed ones."""

    def __init__(self, row_shape: tuple[int, ...], capacity: int = 64):
        self.row_shape = tuple(row_shape)
        self._slots: OrderedDict[Hashable, int] = OrderedDict()  # key -> row of the table, oldest first
        self._table = np.empty((capacity, *self.row_shape), np.float32)
        self._free = list(range(capacity))
        self.hits = self.misses = 0

    def clear(self) -> None:
        self._free = list(range(self.capacity))
        self._slots.clear()

    @property
    def capacity(self) -> int:
        return len(self._table)

    def plan(self, *inputs: np.ndarray, keys: Sequence[Sequence[Hashable]] | None = None) -> Plan:
        """(B, T, D) inputs, one per feature, and their snippets' keys (B x T; default: the
        input bytes) -> the inputs of the rows to compute (N, D), the known rows
        (M, *row_shape) and ``index`` (B, T) into [known; computed]."""
        lead = inputs[0].shape[:2]
        flat = [np.ascontiguousarray(a, dtype=np.float32).reshape(-1, a.shape[-1]) for a in inputs]
        if keys is None:
            keys = [row.tobytes() for row in np.concatenate(flat, axis=1)]
        else:
            keys = [key for window in keys for key in window]
            if len(keys) != len(flat[0]):
                raise ValueError(f"{len(keys)} keys for {lead[0]} x {lead[1]} snippets")
        slots, seen, known, new = self._slots, {}, [], {}
        index = np.empty(len(keys), dtype=np.int64)
        for i, key in enumerate(keys):
            position = seen.get(key)
            if position is None:
                slot = slots.get(key)
                if slot is None:
                    position = -1 - len(new)  # numbered after the known rows, below
                    new[key] = i
                else:
                    slots.move_to_end(key)
                    position = len(known)
                    known.append(slot)
                seen[key] = position
            index[i] = position
        index[index < 0] = len(known) - 1 - index[index < 0]
        self.misses += len(new)
        self.hits += len(keys) - len(new)
        rows = list(new.values())
        return Plan([f[rows] for f in flat], self._table[known], index.reshape(lead), list(new))

    def keep(self, plan: Plan, computed: np.ndarray) -> None:
        need = len(plan.keys)
        if need > self.capacity:
            grown = np.empty((need, *self.row_shape), np.float32)
            grown[:self.capacity] = self._table
            self._free += range(self.capacity, need)
            self._table = grown
        while len(self._free) < need:
            self._free.append(self._slots.popitem(last=False)[1])
        slots = [self._free.pop() for _ in range(need)]
        self._table[slots] = computed
        self._slots.update(zip(plan.keys, slots))
