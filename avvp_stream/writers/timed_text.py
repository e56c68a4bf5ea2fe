"""Event outputs written as each event ends (so a live run loses nothing already ended):
LLP's tab-separated evaluation format and SRT / WebVTT subtitles."""

from __future__ import annotations

from typing import TextIO

from ..events import Event
from .base import Writer

MODALITY_NAMES = {"audio": "heard", "visual": "seen", "audio_visual": "heard and seen"}


class _EventWriter(Writer):
    """Ended events only: per-snippet records are not part of these formats."""

    def __init__(self, out: TextIO, name: str = "stream"):
        self.out = out
        self.name = name

    def event(self, ev: Event) -> None:
        if ev.state == "end":
            self.out.write(self.format(ev))
            self.out.flush()

    def format(self, ev: Event) -> str:
        raise NotImplementedError


class TsvWriter(_EventWriter):
    """``filename onset offset event_labels modality``: the columns of LLP's
    ``AVVP_eval_audio.csv`` / ``AVVP_eval_visual.csv`` plus the modality (audio, visual,
    audio_visual), so that ``avvp-train eval``-style tools can split it per modality."""

    def __init__(self, out: TextIO, name: str = "stream"):
        super().__init__(out, name)
        self.out.write("filename\tonset\toffset\tevent_labels\tmodality\n")
        self.out.flush()

    def format(self, ev: Event) -> str:
        return f"{self.name}\t{ev.onset:g}\t{ev.offset:g}\t{ev.label}\t{ev.modality}\n"


def _clock(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


class SrtWriter(_EventWriter):
    def __init__(self, out: TextIO, name: str = "stream"):
        super().__init__(out, name)
        self.count = 0

    def format(self, ev: Event) -> str:
        self.count += 1
        return (f"{self.count}\n{_clock(ev.onset, ',')} --> {_clock(ev.offset, ',')}\n"
                f"{ev.label.replace('_', ' ')} ({MODALITY_NAMES[ev.modality]})\n\n")


class VttWriter(_EventWriter):
    def __init__(self, out: TextIO, name: str = "stream"):
        super().__init__(out, name)
        self.out.write("WEBVTT\n\n")
        self.out.flush()

    def format(self, ev: Event) -> str:
        return (f"{_clock(ev.onset, '.')} --> {_clock(ev.offset, '.')}\n"
                f"{ev.label.replace('_', ' ')} ({MODALITY_NAMES[ev.modality]})\n\n")
