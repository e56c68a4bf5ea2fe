"""What every output implements. Each method does nothing by default, so a writer only
says what it writes: per-snippet labels, event changes, the closing summary of a live run."""

from __future__ import annotations

from ..events import Event


class Writer:
    def snippet(self, index: int, start: float, labels: dict, final: bool, captured_at: float | None) -> None:
        """One snippet's labels (``labels``: modality -> (C,) bool), provisional or final."""

    def event(self, ev: Event) -> None:
        """An event started, was extended or ended."""

    def summary(self, stats: dict) -> None:
        """What a live run dropped, filled and measured (at its end)."""

    def close(self) -> None:
        """The run is over: flush, draw, release."""


class Writers(Writer):
    """Several outputs fed as one (e.g. JSON Lines on stdout and the timeline plot)."""

    def __init__(self, *writers: Writer):
        self.writers = writers

    def snippet(self, *args) -> None:
        for w in self.writers:
            w.snippet(*args)

    def event(self, ev: Event) -> None:
        for w in self.writers:
            w.event(ev)

    def summary(self, stats: dict) -> None:
        for w in self.writers:
            w.summary(stats)

    def close(self) -> None:
        for w in self.writers:
            w.close()
