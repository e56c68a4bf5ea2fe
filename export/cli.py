"""``avvp-export``: turn models into deployable artefacts (ONNX files, TensorRT engines,
the fused pooling op) and convert checkpoints."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from avvp_stream.errors import AvvpError, run_cli

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Export HAN and the feature networks: ONNX, TensorRT engines, the fused pooling op, checkpoints.")


def _echo(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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
    _echo(f"wrote {out}")


@app.command()
def onnx(
    out: Path = typer.Argument(..., help="Folder for han_head.onnx, han_head_streaming.onnx, the extractors' .onnx files and manifest.json."),
    checkpoint: Optional[str] = typer.Option(None, help="HAN checkpoint (default: the official one)."),
    random_weights: bool = typer.Option(False, "--random-weights", help="Random networks, no weight files (tests, benchmarks)."),
    extractors: bool = typer.Option(True, help="Also export VGGish, ResNet-152 and R(2+1)D-18 (dynamic batch)."),
    fp16_head: bool = typer.Option(False, "--fp16-head", help="Also write han_head_fp16.onnx (for fp16 TensorRT engines)."),
    tolerance: float = typer.Option(1e-4, help="Largest allowed |onnxruntime - torch|, relative to the output scale when that exceeds 1."),
):
    """Export to ONNX and check every file against torch with ONNX Runtime on the CPU
    (max abs difference printed and kept in manifest.json)."""
    import torch

    from avvp_stream.export import onnx_export as ox

    ox.require_onnx()
    from avvp_stream.checkpoint import run_model

    model = run_model(checkpoint, random_weights, "cpu")
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"opset": ox.OPSET, "torch": torch.__version__, "files": {}}
    failed = []
    head = ox.export_head(model, out / "han_head.onnx")
    diff = ox.check_head(head, model)
    manifest["files"]["han_head.onnx"] = {"max_abs_diff": diff, "dynamic": "batch, time"}
    _echo(f"han_head.onnx: max |onnxruntime - torch| = {diff:.2e}")
    failed += [head.name] if diff > tolerance else []
    from avvp_stream.head.folded import can_fold

    if can_fold(model):
        streaming = ox.export_streaming_head(model, out / "han_head_streaming.onnx")
        diff = ox.check_streaming_head(streaming, model)
        manifest["files"][streaming.name] = {"max_abs_diff": diff, "dynamic": "new, known, batch, time",
                                             "inputs": list(ox.streaming_input_names(model))}
        _echo(f"{streaming.name}: max |onnxruntime - torch| = {diff:.2e} (sliding windows through the row cache)")
        failed += [streaming.name] if diff > tolerance else []
    if fp16_head:
        ox.export_head(model, out / "han_head_fp16.onnx", fp16=True)
        manifest["files"]["han_head_fp16.onnx"] = {"dynamic": "batch, time", "dtype": "float16"}
        _echo("han_head_fp16.onnx written (fp16 weights and inputs)")
    if extractors:
        from avvp_stream.features.extractor import FeatureExtractor

        fx = FeatureExtractor(device="cpu", random_weights=random_weights)
        stages = ox.extractor_stages(fx)
        for name, path in ox.export_extractors(fx, out).items():
            module, example = stages[name]
            with torch.inference_mode():
                scale = max(1.0, float(module(example).abs().max()))
            d = ox.max_abs_diff(path, module, (example,), ["input"])
            manifest["files"][path.name] = {"max_abs_diff": d, "output_scale": scale, "dynamic": "batch"}
            _echo(f"{path.name}: max |onnxruntime - torch| = {d:.2e} (output scale {scale:.3g})")
            failed += [path.name] if d / scale > tolerance else []
    ox.write_manifest(out, manifest)
    if failed:
        raise AvvpError(f"ONNX Runtime differs from torch by more than {tolerance:g} in: {', '.join(failed)}")


@app.command("build-ext")
def build_ext(
    cuda: Optional[bool] = typer.Option(None, "--cuda/--no-cuda", help="Build the CUDA kernel too (default: when a CUDA toolkit is found)."),
    verbose: bool = typer.Option(False, help="Show the compiler's output."),
):
    """Compile the fused attentive-pooling op (cpp_ext/) into the cache, ahead of time;
    the runtime then loads it instead of the torch reference."""
    from avvp_stream.head import fused_pool as ops

    folder = ops.build(with_cuda=cuda, verbose=verbose)
    _echo(f"built the fused pooling op ({'CPU + CUDA' if ops._state['with_cuda'] else 'CPU'}) in {folder}")


@app.command()
def tensorrt(
    onnx_file: Path = typer.Argument(..., help="An ONNX file from `avvp-export onnx`: han_head.onnx, han_head_fp16.onnx, vggish.onnx, resnet152.onnx or r2plus1d_18.onnx."),
    cache: Optional[Path] = typer.Option(None, help="Engine cache folder (default: $AVVP_STREAM_HOME/tensorrt)."),
):
    """Build (or find fresh in the cache) a TensorRT engine for this GPU and TensorRT
    version: the head (profile over batch and time) or a feature network (over batch).
    fp16 engines come from fp16 ONNX files. UNTESTED on this project's machines."""
    from avvp_stream.backends import unavailable_reason
    from avvp_stream.paths import cache_home

    if not onnx_file.is_file():
        raise AvvpError(f"{onnx_file}: file not found")
    if onnx_file.stem.startswith("han_head_streaming"):
        raise AvvpError(f"{onnx_file.name} is the row-cache graph for ONNX Runtime; TensorRT builds han_head.onnx")
    missing = unavailable_reason("tensorrt", "cuda")  # the modules only: the build itself finds the GPU
    if missing:
        raise AvvpError(missing)
    from avvp_stream.backends.tensorrt_build import EXTRACTOR_PROFILE, HEAD_PROFILE, cached_engine

    profile = HEAD_PROFILE if onnx_file.stem.startswith("han_head") else EXTRACTOR_PROFILE
    engine = cached_engine(onnx_file, cache or cache_home() / "tensorrt", onnx_file.stem,
                           fp16_onnx="fp16" in onnx_file.stem, profile=profile)
    _echo(f"engine: {engine} (key in {engine.with_suffix('.json')})")


@app.command()
def verify(
    backend: Optional[str] = typer.Option(None, help="One engine (torch, onnxruntime, cuda-graph, tensorrt); default: every one."),
    checkpoint: Optional[str] = typer.Option(None, help="HAN checkpoint (default: the official one)."),
    random_weights: bool = typer.Option(False, "--random-weights", help="A randomly initialised HAN (no weight file)."),
    device: str = typer.Option("auto", help="torch device: auto, cpu, cuda, cuda:N."),
):
    """Verify each engine's HAN head against the torch eager reference on fixed random
    inputs (windows of 1..10 snippets, batch 1 and 8) and print engine, precision,
    deviation, speed against eager and verdict. The verdicts are cached: --backend auto
    then only uses engines that passed."""
    from rich.console import Console
    from rich.table import Table

    from avvp_stream.backends import ENGINES, get, unavailable_reason
    from avvp_stream.backends.verdicts import verified
    from avvp_stream.checkpoint import run_model
    from avvp_stream.device import resolve_device

    run_device = resolve_device(device)
    model = run_model(checkpoint, random_weights, run_device)
    names = [backend] if backend else list(ENGINES)
    table = Table(title=f"engines against torch eager on {run_device}")
    for column in ("engine", "precision", "max |diff|", "tolerance", "speed vs eager", "verdict"):
        table.add_column(column)
    failed = []
    for name in names:
        reason = unavailable_reason(name, run_device.type)
        if reason:
            if backend:
                raise AvvpError(f"--backend {name}: {reason}")
            table.add_row(name, "-", "-", "-", "-", f"not here: {reason}")
            continue
        engine = get(name)
        v = verified(engine, model, run_device, fresh=True)
        ran = v.max_abs_diff != float("inf")
        table.add_row(name, engine.precision, f"{v.max_abs_diff:.1e}" if ran else "-", f"{v.tolerance:g}",
                      f"{v.speedup:.2f}x" if ran else "-", "pass" if v.passed else ("FAIL" if ran else "FAIL (did not run)"))
        failed += [] if v.passed else [name]
    Console(width=120).print(table)
    if failed:
        raise AvvpError(f"failed verification: {', '.join(failed)} (auto will not use them)")


@app.callback()
def _root() -> None:
    pass


def main() -> None:
    run_cli(app, "avvp-export")


if __name__ == "__main__":
    main()
