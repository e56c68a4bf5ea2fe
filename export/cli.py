"""``avvp-export``: turn models into deployable artefacts."""

from __future__ import annotations

from pathlib import Path

import typer

from avvp_stream.errors import run_cli

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Export HAN models. ONNX, TensorRT and the fused CUDA pooling op are being built (see README).")


@app.command()
def checkpoint(
    source: Path = typer.Argument(..., help="Official MMIL_Net.pt or an avvp-stream checkpoint."),
    out: Path = typer.Argument(..., help="Where to write the avvp-stream checkpoint (config + weights)."),
):
    """Convert a checkpoint (e.g. the official MMIL_Net.pt) into avvp-stream's format,
    which carries its model config and drops the official file's unused modules."""
    from avvp_stream.checkpoint import load_model, save_checkpoint

    model = load_model(source)
    save_checkpoint(out, model, converted_from=str(source))
    typer.echo(f"wrote {out}", err=True)


@app.callback()
def _root() -> None:
    pass


def main() -> None:
    run_cli(app, "avvp-export")


if __name__ == "__main__":
    main()
