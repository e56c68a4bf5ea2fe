"""Results as the paper's Table 1 (rows: event types; columns: segment / event level)."""

from __future__ import annotations

import json

ROWS = (("audio", "Audio"), ("visual", "Visual"), ("audio_visual", "Audio-Visual"),
        ("type_at_av", "Type@AV"), ("event_at_av", "Event@AV"))


def results_table(metrics: dict, title: str = "Audio-visual video parsing"):
    from rich.table import Table

    table = Table(title=title)
    table.add_column("Event type")
    table.add_column("Segment-level", justify="right")
    table.add_column("Event-level", justify="right")
    for key, name in ROWS:
        table.add_row(name, f"{metrics['segment'][key]:.1f}", f"{metrics['event'][key]:.1f}")
    return table


def print_results(metrics: dict, as_json: bool, title: str = "Audio-visual video parsing") -> None:
    """JSON (the keys of the official evaluator, percent) or the Table-1 layout, on stdout."""
    if as_json:
        print(json.dumps(metrics, indent=1))
        return
    from rich.console import Console

    Console().print(results_table(metrics, title))
