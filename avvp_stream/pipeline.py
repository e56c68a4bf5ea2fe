"""The one loop that every source goes through: snippets -> features -> online parser
-> events -> writers. A file feeds it batches as fast as it decodes; a live source feeds
whatever is waiting in its queue."""

from __future__ import annotations

import signal
from collections.abc import Iterable, Sequence
from contextlib import contextmanager

import numpy as np

from .events import EventTracker
from .features.extractor import FeatureExtractor
from .parser import OnlineParser, SnippetResult
from .sources.file import Snippet


@contextmanager
def deferred_interrupt():
    """Hold Ctrl-C until the block is done, so that a snippet and its events are written
    together: the interrupt never leaves an event started in the tracker but not on disk."""
    received = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    except ValueError:  # not the main thread: nothing to defer
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


class Writers:
    """Several outputs fed as one (e.g. JSON Lines on stdout and the timeline plot)."""

    def __init__(self, *writers):
        self.writers = writers

    def snippet(self, *args, **kwargs) -> None:
        for w in self.writers:
            w.snippet(*args, **kwargs)

    def event(self, ev) -> None:
        for w in self.writers:
            w.event(ev)

    def close(self) -> None:
        for w in self.writers:
            if hasattr(w, "close"):
                w.close()


def parse_snippets(batches: Iterable[Sequence[Snippet]], extractor: FeatureExtractor, parser: OnlineParser,
                   writer, *, keep: np.ndarray | None = None, provisional: bool = False,
                   tracker: EventTracker | None = None) -> int:
    """Parse every batch; returns the number of snippets parsed. Whatever stops the loop
    (end, error, Ctrl-C), what was parsed is flushed and open events are ended."""
    tracker = tracker or EventTracker()
    snippets: dict[int, Snippet] = {}  # parser index -> snippet, until its labels are final

    def emit(results: list[SnippetResult]) -> None:
        with deferred_interrupt():
            for r in results:
                s = snippets[r.index] if r.final else snippets.get(r.index)
                labels = {"audio": r.audio, "visual": r.visual, "audio_visual": r.audio_visual}
                if keep is not None:
                    labels = {m: v & keep for m, v in labels.items()}
                if r.final or provisional:
                    writer.snippet(s.index, s.start, labels, r.final, s.captured_at, prob=r.prob)
                if r.final:
                    for ev in tracker.update(s.start, labels):
                        writer.event(ev)
                    del snippets[r.index]

    try:
        for batch in batches:
            feats = extractor.snippets(np.stack([s.audio for s in batch]), np.stack([s.frames for s in batch]))
            for s, a, v2d, v3d in zip(batch, feats.audio, feats.video_2d, feats.video_3d):
                snippets[parser.seen] = s
                parser.insert_snippet(a, v2d, v3d)
            emit(parser.process())
    finally:
        with deferred_interrupt():
            if parser.seen:
                emit(parser.finish())
            for ev in tracker.close():
                writer.event(ev)
    return parser.seen
