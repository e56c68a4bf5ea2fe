"""A live table for a terminal (rich): the last seconds' labels, provisional ones dimmed,
the events open now, and how far behind real time the labels are."""

from __future__ import annotations

import time
from collections import OrderedDict

from ..classes import CLASSES
from ..events import Event
from .base import Writer

ROWS = 12


class TableWriter(Writer):
    def __init__(self, console=None, classes: tuple[str, ...] = CLASSES, title: str = "avvp-stream"):
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console()
        self.classes = classes
        self.title = title
        self.rows: OrderedDict[int, tuple] = OrderedDict()
        self.open: dict[tuple[str, str], float] = {}
        self.stats: dict = {}
        self.live = Live(self._render(), console=self.console, auto_refresh=False, transient=False)
        self.live.start()

    def _names(self, mask) -> str:
        return ", ".join(self.classes[c].replace("_", " ") for c, on in enumerate(mask) if on) or "-"

    def snippet(self, index: int, start: float, labels: dict, final: bool, captured_at: float | None) -> None:
        latency = time.time() - captured_at if captured_at else None
        self.rows[index] = (start, self._names(labels["audio"]), self._names(labels["visual"]),
                            self._names(labels["audio_visual"]), final, latency)
        self.rows.move_to_end(index)
        while len(self.rows) > ROWS:
            self.rows.popitem(last=False)
        self._refresh()

    def event(self, ev: Event) -> None:
        key = (ev.modality, ev.label)
        if ev.state == "end":
            self.open.pop(key, None)
        else:
            self.open[key] = ev.onset
        self._refresh()

    def summary(self, stats: dict) -> None:
        self.stats = stats
        self._refresh()

    def _render(self):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(title=self.title, expand=True)
        for name, style in (("time", "bold"), ("audio", "cyan"), ("visual", "magenta"), ("audio-visual", "green"),
                            ("labels", ""), ("latency", "")):
            table.add_column(name, style=style, no_wrap=name in ("time", "latency"))
        for start, audio, visual, av, final, latency in self.rows.values():
            table.add_row(f"{start:7.1f}s", audio, visual, av, "final" if final else "provisional",
                          "" if latency is None else f"{latency:.2f}s", style=None if final else "dim")
        now_open = "; ".join(f"{label.replace('_', ' ')} ({modality.replace('_', '-')}) since {onset:g}s"
                             for (modality, label), onset in sorted(self.open.items())) or "none"
        lines = [Text(f"open events: {now_open}")]
        if self.stats:
            lines.append(Text(", ".join(f"{k}: {v}" for k, v in self.stats.items()
                                        if v is not None and not isinstance(v, dict)), style="dim"))
        return Group(table, *lines)

    def _refresh(self) -> None:
        self.live.update(self._render(), refresh=True)

    def close(self) -> None:
        self.live.stop()
