"""The one loop that every source goes through: snippets -> features -> online parser
-> events -> writers. A file feeds it batches as fast as it decodes; a live source feeds
whatever is waiting in its queue."""

from __future__ import annotations

import signal
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from .binarize import Binarize, OnlineBinarize
from .events import EventTracker
from .features.extractor import FeatureExtractor, Features
from .parser import OnlineParser, SnippetId, SnippetResult
from .sources.file import Snippet
from .stages import StageTimes


class _Interrupt:
    """Ctrl-C during a parse. The handler raises at once, except while a snippet and its
    events are being written (then right after), and it also remembers the request: native
    code (decoders, inference runtimes) that swallows the KeyboardInterrupt cannot lose it,
    because the loop checks between batches."""

    requested = False
    deferring = 0

    @classmethod
    def handler(cls, signum, frame) -> None:
        cls.requested = True
        if not cls.deferring:
            raise KeyboardInterrupt

    @classmethod
    def check(cls) -> None:
        if cls.requested and not cls.deferring:
            raise KeyboardInterrupt


@contextmanager
def deferred_interrupt():
    """Hold Ctrl-C until the block is done, so that a snippet and its events are written
    together: the interrupt never leaves an event started in the tracker but not on disk."""
    _Interrupt.deferring += 1
    try:
        yield
    finally:
        _Interrupt.deferring -= 1
    _Interrupt.check()


@contextmanager
def interrupt_handling():
    """Install the Ctrl-C handler for a parse (main thread only; elsewhere nothing changes)."""
    try:
        previous = signal.signal(signal.SIGINT, _Interrupt.handler)
    except ValueError:  # not the main thread
        yield
        return
    _Interrupt.requested = False
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Emitter:
    """Writes final (and, if asked, provisional) snippets and the event changes they cause.
    Snippet records carry the plain thresholded labels; events are formed from steady
    labels when ``binarize`` asks for hysteresis or minimum durations."""

    def __init__(self, writer, tracker: EventTracker, keep: np.ndarray | None, provisional: bool,
                 binarize: Binarize | None = None):
        self.writer, self.tracker, self.keep, self.provisional = writer, tracker, keep, provisional
        self.steady = None if binarize is None or binarize.plain else OnlineBinarize(binarize, (2, len(tracker.classes)))
        self._starts: deque[float] = deque()  # of snippets the steady labels still wait for
        self._last: float | None = None  # start of the last final snippet given to the steady labels

    def _masked(self, labels: dict) -> dict:
        return labels if self.keep is None else {m: v & self.keep for m, v in labels.items()}

    def emit(self, results: list[SnippetResult]) -> None:
        with deferred_interrupt():
            for r in results:
                s = r.snippet
                labels = self._masked({"audio": r.audio, "visual": r.visual, "audio_visual": r.audio_visual})
                if r.final or self.provisional:
                    self.writer.snippet(s.index, s.start, labels, r.final, s.captured_at)
                if not r.final:
                    continue
                if self.steady is None:
                    self._events(s.start, labels)
                    continue
                if self._last is not None and s.start > self._last + self.tracker.snippet_seconds + 1e-6:
                    self._steady(self.steady.flush())  # snippets were dropped: the stretch ends
                self._last = s.start
                self._starts.append(s.start)
                self._steady(self.steady.push(r.prob))

    def _steady(self, decided: list[np.ndarray]) -> None:
        for audio, visual in decided:
            self._events(self._starts.popleft(), self._masked({"audio": audio, "visual": visual,
                                                               "audio_visual": audio & visual}))

    def _events(self, start: float, labels: dict) -> None:
        for ev in self.tracker.update(start, labels):
            self.writer.event(ev)

    def close(self) -> None:
        """End of input: the steady labels still waiting are decided, open events end."""
        if self.steady is not None:
            self._steady(self.steady.flush())
        for ev in self.tracker.close():
            self.writer.event(ev)


def _timed_batches(batches: Iterable, times: StageTimes, stage: str) -> Iterator:
    """``batches``, with the time spent waiting for each (decoding a file, or waiting for
    live capture) recorded as ``stage``."""
    it = iter(batches)
    while True:
        with times.stage(stage):
            batch = next(it, None)
        if batch is None:
            return
        yield batch


def parse_snippets(batches: Iterable[Sequence[Snippet]], extractor: FeatureExtractor, parser: OnlineParser,
                   writer, *, keep: np.ndarray | None = None, provisional: bool = False,
                   tracker: EventTracker | None = None, times: StageTimes | None = None,
                   input_stage: str = "decode", binarize: Binarize | None = None) -> int:
    """Parse every batch; returns the number of snippets parsed. Whatever stops the loop
    (end, error, Ctrl-C), what was parsed is flushed and open events are ended. ``times``
    records each stage (``input_stage``: what getting a batch costs, decoding a file or
    waiting for live capture)."""
    times = times if times is not None else StageTimes()

    def features():
        for batch in _timed_batches(batches, times, input_stage):
            feats = extractor.snippets(np.stack([s.audio for s in batch]), np.stack([s.frames for s in batch]))
            yield [SnippetId(s.index, s.start, s.captured_at) for s in batch], feats

    extractor.times = times
    try:
        return parse_features(features(), parser, writer, keep=keep, provisional=provisional, tracker=tracker,
                              times=times, binarize=binarize)
    finally:
        extractor.times = None


def parse_features(batches: Iterable[tuple[Sequence[SnippetId], Features]], parser: OnlineParser, writer, *,
                   keep: np.ndarray | None = None, provisional: bool = False,
                   tracker: EventTracker | None = None, times: StageTimes | None = None,
                   binarize: Binarize | None = None) -> int:
    """``parse_snippets`` from features already extracted (a collection's snippets are
    extracted elsewhere, in batches of many videos)."""
    out = _Emitter(writer, tracker or EventTracker(), keep, provisional, binarize)
    times = times if times is not None else StageTimes()
    timed = times.stage
    times.start()
    with interrupt_handling():
        try:
            for ids, feats in batches:
                _Interrupt.check()
                with timed("head"):
                    for i, snippet in enumerate(ids):
                        parser.insert_snippet(*feats.rows(i), snippet=snippet)
                    results = parser.process()
                with timed("write"):
                    out.emit(results)
                times.snippets_done(len(ids))
            _Interrupt.check()
        finally:
            with deferred_interrupt():
                if parser.seen:
                    with timed("head"):
                        results = parser.finish()
                    with timed("write"):
                        out.emit(results)
                with timed("write"):
                    out.close()
                times.stop()
    return parser.seen
