"""The one loop that every source goes through: snippets -> features -> online parser
-> events -> writers. A file feeds it batches as fast as it decodes; a live source feeds
whatever is waiting in its queue."""

from __future__ import annotations

import signal
from collections.abc import Iterable, Sequence
from contextlib import contextmanager

import numpy as np

from .events import EventTracker
from .features.extractor import FeatureExtractor, Features
from .parser import OnlineParser, SnippetId, SnippetResult
from .sources.file import Snippet


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
    """Writes final (and, if asked, provisional) snippets and the event changes they cause."""

    def __init__(self, writer, tracker: EventTracker, keep: np.ndarray | None, provisional: bool):
        self.writer, self.tracker, self.keep, self.provisional = writer, tracker, keep, provisional

    def emit(self, results: list[SnippetResult]) -> None:
        with deferred_interrupt():
            for r in results:
                s = r.snippet
                labels = {"audio": r.audio, "visual": r.visual, "audio_visual": r.audio_visual}
                if self.keep is not None:
                    labels = {m: v & self.keep for m, v in labels.items()}
                if r.final or self.provisional:
                    self.writer.snippet(s.index, s.start, labels, r.final, s.captured_at)
                if r.final:
                    for ev in self.tracker.update(s.start, labels):
                        self.writer.event(ev)


def parse_snippets(batches: Iterable[Sequence[Snippet]], extractor: FeatureExtractor, parser: OnlineParser,
                   writer, *, keep: np.ndarray | None = None, provisional: bool = False,
                   tracker: EventTracker | None = None) -> int:
    """Parse every batch; returns the number of snippets parsed. Whatever stops the loop
    (end, error, Ctrl-C), what was parsed is flushed and open events are ended."""

    def features():
        for batch in batches:
            feats = extractor.snippets(np.stack([s.audio for s in batch]), np.stack([s.frames for s in batch]))
            yield [SnippetId(s.index, s.start, s.captured_at) for s in batch], feats

    return parse_features(features(), parser, writer, keep=keep, provisional=provisional, tracker=tracker)


def parse_features(batches: Iterable[tuple[Sequence[SnippetId], Features]], parser: OnlineParser, writer, *,
                   keep: np.ndarray | None = None, provisional: bool = False,
                   tracker: EventTracker | None = None) -> int:
    """``parse_snippets`` from features already extracted (a collection's snippets are
    extracted elsewhere, in batches of many videos)."""
    out = _Emitter(writer, tracker or EventTracker(), keep, provisional)
    with interrupt_handling():
        try:
            for ids, feats in batches:
                _Interrupt.check()
                for i, snippet in enumerate(ids):
                    parser.insert_snippet(*feats.rows(i), snippet=snippet)
                out.emit(parser.process())
            _Interrupt.check()
        finally:
            with deferred_interrupt():
                if parser.seen:
                    out.emit(parser.finish())
                for ev in out.tracker.close():
                    writer.event(ev)
    return parser.seen
