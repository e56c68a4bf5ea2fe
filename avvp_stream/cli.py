"""``avvp-stream``: the runtime's command line."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .errors import run_cli

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Audio-visual video parsing at run time. Streaming from files and live devices is being built (see README); today: inspect a model.")


@app.command()
def info(checkpoint: Path = typer.Argument(..., help="Our checkpoint or the official MMIL_Net.pt.")):
    """Show a checkpoint's model configuration and training metadata as JSON."""
    from .checkpoint import read_checkpoint

    ck = read_checkpoint(checkpoint)
    n = sum(t.numel() for t in ck["state_dict"].values())
    meta = {k: v for k, v in ck["metadata"].items() if k in ("epoch", "val", "train_config")}
    print(json.dumps({"official": ck["official"], "parameters": n, "config": ck["config"].to_dict(), **meta}, indent=1))


@app.callback()
def _root() -> None:
    pass


def main() -> None:
    run_cli(app, "avvp-stream")


if __name__ == "__main__":
    main()
