"""Online parsing: HAN over a sliding window of snippets, one snippet at a time.

A window holds the last W snippets (fewer at the start). Each window's snippet
probabilities are gated by that window's own video-level prediction (the official
decision rule), and a snippet's probability is the mean over the windows that contained
it (``aggregate``). A snippet is emitted provisionally as soon as one window covers it
and finally after ``lookahead`` more snippets. Offline parsing is the same loop fed as
fast as possible with full windows only, so a clip of W snippets is parsed exactly as
HAN parses it in one piece.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .backends.base import Backend
from .features.timing import pool_frames

if TYPE_CHECKING:
    from .model import HAN

_streams = itertools.count()  # each parser's snippets are its own in a shared row cache


def aggregate(windows: Sequence[tuple[int, np.ndarray]], num_snippets: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of overlapping window outputs. ``windows``: (first snippet index, (n, ...) array).
    Returns the (num_snippets, ...) mean and the (num_snippets,) count of windows per
    snippet (0 where none covered it; the mean is 0 there)."""
    if not windows:
        raise ValueError("no windows to aggregate")
    shape = windows[0][1].shape[1:]
    total = np.zeros((num_snippets, *shape), dtype=np.float64)
    count = np.zeros(num_snippets, dtype=np.int64)
    for start, values in windows:
        total[start:start + len(values)] += values
        count[start:start + len(values)] += 1
    mean = total / np.maximum(count, 1).reshape(-1, *([1] * len(shape)))
    return mean, count


@dataclass(frozen=True)
class SnippetId:
    """Who a snippet is: the source's own index (not the parser's count: live input may
    skip snippets), its start in media seconds and when it was captured (host clock)."""

    index: int
    start: float
    captured_at: float | None = None


@dataclass
class SnippetResult:
    """One snippet's labels. ``prob`` (2, C): gated probabilities, audio then visual;
    ``snippet`` is the identity it was inserted with; ``position`` its place in the
    parser's stream."""

    snippet: SnippetId
    prob: np.ndarray
    final: bool
    threshold: float = 0.5
    position: int = 0

    @property
    def index(self) -> int:
        return self.snippet.index

    @property
    def audio(self) -> np.ndarray:
        return self.prob[0] >= self.threshold

    @property
    def visual(self) -> np.ndarray:
        return self.prob[1] >= self.threshold

    @property
    def audio_visual(self) -> np.ndarray:
        return self.audio & self.visual


@dataclass
class CommitPolicy:
    """When a snippet's labels become final, and which windows count for them.

    ``lookahead`` L: final once L more snippets have arrived. ``full_windows_only``: final
    labels use only windows of W snippets (or the whole stream when it is shorter than
    W), the offline setting; the partial windows of the start then give provisional
    labels only.
    """

    window: int = 10
    lookahead: int = 0
    full_windows_only: bool = False

    def __post_init__(self) -> None:
        if self.window < 1 or self.lookahead < 0:
            raise ValueError("window must be >= 1 and lookahead >= 0")

    @classmethod
    def offline(cls, window: int = 10) -> "CommitPolicy":
        """A file: final labels from full windows only, each snippet final once every
        window over it has run (a clip of ``window`` snippets is parsed as HAN parses it)."""
        return cls(window, window - 1, full_windows_only=True)

    def counts(self, length: int, total_seen: int, finished: bool) -> bool:
        """Does a window of ``length`` snippets count for final labels?"""
        if not self.full_windows_only:
            return True
        return length == self.window or (finished and length == total_seen < self.window)

    def final_until(self, total_seen: int, finished: bool) -> int:
        """Snippets with an index below this are final."""
        if finished:
            return total_seen
        if self.full_windows_only and total_seen < self.window:
            return 0
        return max(0, total_seen - self.lookahead)


@dataclass
class OnlineParser:
    """``insert_snippet`` features as they arrive, ``process`` to run HAN and collect the
    new results, ``finish`` at the end of the stream. Memory stays bounded: only the
    last W snippets' features and the windows of not-yet-final snippets are kept."""

    model: HAN | Backend  # a HAN runs through the torch backend
    policy: CommitPolicy = field(default_factory=CommitPolicy)
    threshold: float = 0.5
    device: Any = "cpu"  # torch device of a HAN given as ``model``

    def __post_init__(self) -> None:
        if isinstance(self.model, Backend):
            self.backend = self.model
        else:
            from .backends.torch_backend import TorchBackend  # the only path that needs torch here

            self.backend = TorchBackend(self.model, self.device)
        self._stream = next(_streams)
        self._features: list[tuple[np.ndarray, ...]] = []  # the last W snippets', one array per feature
        self._ids: list[SnippetId] = []  # of the snippets not final yet, from self._emitted_final
        self._base = 0  # snippet index of self._features[0]
        self._seen = 0
        self._windows: list[tuple[int, np.ndarray]] = []  # (first snippet, gated (n, 2, C))
        self._pending: list[int] = []  # ends of windows still to run
        self._emitted_final = 0
        self._finished = False

    @property
    def seen(self) -> int:
        return self._seen

    def insert_snippet(self, *features: np.ndarray, snippet: SnippetId | None = None) -> None:
        """One snippet's features, one per model input (the official three: (128,),
        (k, 2048) frame features or (2048,) their mean, (512,)), and who it is (default: its
        position in this stream, one second each). A 2-D feature is per-frame rows,
        averaged here."""
        if self._finished:
            raise RuntimeError("the stream is finished")
        if self._features and len(features) != len(self._features[0]):
            raise ValueError(f"{len(features)} features, the stream has {len(self._features[0])}")
        self._ids.append(snippet or SnippetId(self._seen, float(self._seen)))
        rows = [np.asarray(f, dtype=np.float32) for f in features]
        self._features.append(tuple(pool_frames(f, len(f))[0] if f.ndim == 2 else f for f in rows))
        self._seen += 1
        self._pending.append(self._seen)

    def _run_windows(self) -> None:
        """HAN on every pending window; windows of equal length run as one batch."""
        w = self.policy.window
        by_length: dict[int, list[int]] = {}
        for end in self._pending:
            by_length.setdefault(end - max(0, end - w), []).append(end)
        self._pending = []
        for length, ends in sorted(by_length.items()):
            rows = [self._features[end - length - self._base:end - self._base] for end in ends]
            inputs = [np.stack([np.stack([f[j] for f in row]) for row in rows]) for j in range(len(rows[0][0]))]
            keys = [[(self._stream, p) for p in range(end - length, end)] for end in ends]
            video_prob, snippet_prob = self.backend.head(*inputs, keys=keys)
            gate = (video_prob >= self.threshold).astype(snippet_prob.dtype)[:, None, None, :]
            gated = snippet_prob * gate  # (windows, length, 2, C)
            self._windows.extend((end - length, g) for end, g in zip(ends, gated))
        self._windows.sort(key=lambda item: item[0])

    def process(self) -> list[SnippetResult]:
        """Run pending windows; return final results for snippets that just became final,
        then provisional results for every snippet not final yet."""
        if self._pending:
            self._run_windows()
        return self._collect()

    def finish(self) -> list[SnippetResult]:
        """End of stream: every remaining snippet becomes final."""
        self._finished = True
        return self.process()

    def _collect(self) -> list[SnippetResult]:
        lo, n = self._emitted_final, self._seen
        if lo >= n or not self._windows:
            return []
        # Windows restricted to the snippets not final yet, indexed from lo.
        live = [(max(s, lo) - lo, g[max(0, lo - s):], len(g)) for s, g in self._windows if s + len(g) > lo]
        final_until = self.policy.final_until(n, self._finished)
        out = []
        if final_until > lo:
            counting = [(s, g) for s, g, length in live if self.policy.counts(length, n, self._finished)]
            mean, count = aggregate(counting, n - lo)
            out.extend(self._result(lo + i, mean[i], True) for i in range(final_until - lo) if count[i])
            self._emitted_final = final_until
        if final_until < n:
            mean, _ = aggregate([(s, g) for s, g, _ in live], n - lo)
            out.extend(self._result(lo + i, mean[i], False) for i in range(final_until - lo, n - lo))
        self._prune()
        return out

    def _result(self, position: int, prob: np.ndarray, final: bool) -> SnippetResult:
        return SnippetResult(self._ids[position - self._ids_base], prob, final, self.threshold, position)

    @property
    def _ids_base(self) -> int:
        return self._seen - len(self._ids)

    def _prune(self) -> None:
        del self._ids[:max(0, self._emitted_final - self._ids_base)]
        self._windows = [(s, g) for s, g in self._windows if s + len(g) > self._emitted_final]
        keep_from = max(0, self._seen + 1 - self.policy.window)  # what future windows read
        drop = keep_from - self._base
        if drop > 0:
            del self._features[:drop]
            self._base = keep_from
