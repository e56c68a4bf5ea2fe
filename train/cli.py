"""``avvp-train``: generate data, train HAN from weak labels, evaluate like the paper."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from avvp_stream.device import resolve_device
from avvp_stream.errors import AvvpError, run_cli

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Train and evaluate audio-visual video parsing models on LLP-format features.",
)

DataOpt = typer.Option(None, "--data", help="Dataset folder: the six LLP csv files and feats/{vggish,res152,r2plus1d_18}/ (as `synth` writes).")
FeaturesOpt = typer.Option(None, "--features", help="Feature folder holding vggish/, res152/, r2plus1d_18/ (overrides DATA/feats).")
LabelsOpt = typer.Option(None, "--labels", help="Folder of the LLP csv files (overrides DATA).")
CacheOpt = typer.Option(None, "--cache-dir", help="Where packed splits are cached (default: $AVVP_STREAM_HOME/packed, else ~/.cache/avvp-stream/packed).")


@app.command()
def synth(
    out: Path = typer.Argument(..., help="Output folder (created; must be empty, or hold a dataset of the same spec, which is reused)."),
    train: int = typer.Option(600, help="Training videos (weak labels only)."),
    val: int = typer.Option(100, help="Validation videos (weak + dense labels)."),
    test: int = typer.Option(200, help="Test videos (weak + dense labels)."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives the same dataset."),
):
    """Generate an LLP-format dataset with dense ground truth (audio-only, visual-only and
    audio-visual events, some offset in time; audio easier than vision)."""
    from .synth import SynthSpec, generate

    path = generate(out, SynthSpec(train=train, val=val, test=test, seed=seed))
    typer.echo(f"wrote {train + val + test} videos to {path}", err=True)


@app.command()
def fit(
    data: Optional[Path] = DataOpt,
    features: Optional[Path] = FeaturesOpt,
    labels: Optional[Path] = LabelsOpt,
    out: Path = typer.Option(Path("runs/han"), "--out", help="Folder for best.pt, history.json and metrics.json."),
    epochs: int = typer.Option(40, help="Training epochs (paper: 40)."),
    batch_size: int = typer.Option(16, help="Videos per step (paper: 16)."),
    lr: float = typer.Option(3e-4, help="Adam learning rate (paper: 3e-4), x0.1 every --lr-step epochs."),
    lr_step: int = typer.Option(10, help="Epochs between learning-rate decays (paper: 10)."),
    loss: str = typer.Option("both", help="wsl (video-level only), guided (per-modality only) or both (paper)."),
    pooling: str = typer.Option("attentive", help="MMIL pooling: attentive (paper), max or mean."),
    temporal: str = typer.Option("han", help="Temporal model: none, gru, transformer or han (paper)."),
    noisy_labels: str = typer.Option("smoothing", help="Guided-target noise handling: none, bootstrap or smoothing (paper)."),
    modality_dropout: float = typer.Option(0.0, help="Probability of dropping one modality of a training video."),
    seed: int = typer.Option(0, help="Random seed."),
    device: str = typer.Option("auto", help="torch device: auto (a CUDA GPU if present, else cpu), cpu, cuda, cuda:N."),
    cache_dir: Optional[Path] = CacheOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the test metrics as JSON instead of a table."),
):
    """Train HAN (or an ablation of Table 2) on weak labels; keep the best validation
    Type@AV checkpoint and report it on the test split."""
    from avvp_stream.features.spec import OFFICIAL

    from .dataset import DatasetLayout

    # the data first: a wrong folder, label or feature file is said before any model is built
    layout = DatasetLayout.resolve(data, features, labels, cache_dir)
    dense = layout.dense()
    train_split, val_split = layout.packed("train", OFFICIAL), layout.packed("val", OFFICIAL)

    from avvp_stream.checkpoint import load_model
    from avvp_stream.model import HANConfig

    from .fit import TensorSplit, TrainConfig, evaluate_model, fit as run_fit
    from .report import print_results

    try:
        model_cfg = HANConfig(pooling=pooling, temporal=temporal, modality_dropout=modality_dropout)
        train_cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, lr_step=lr_step, loss=loss,
                                noisy_labels=noisy_labels, seed=seed)
    except ValueError as exc:
        raise AvvpError(str(exc)) from None
    device = str(resolve_device(device))
    result = run_fit(train_split, val_split, dense, out, model_cfg, train_cfg, device)
    model = load_model(result.best_checkpoint, device)
    test = evaluate_model(model, TensorSplit(layout.packed("test", model.config.features), next(model.parameters()).device), dense)
    summary = {"best_epoch": result.best_epoch, "val": result.history[result.best_epoch - 1]["val"], "test": test}
    (out / "metrics.json").write_text(json.dumps(summary, indent=1) + "\n")
    typer.echo(f"best epoch {result.best_epoch}: {result.best_checkpoint}", err=True)
    print_results(test, as_json, title=f"Test split, best epoch {result.best_epoch}")


@app.command("eval")
def evaluate(
    checkpoint: Optional[Path] = typer.Option(None, help="Model to evaluate: ours or the official MMIL_Net.pt."),
    predictions: Optional[Path] = typer.Option(None, help="Score binary predictions instead: npz with `filenames` and `pred` (N, 2, 25, 10), audio then visual."),
    data: Optional[Path] = DataOpt,
    features: Optional[Path] = FeaturesOpt,
    labels: Optional[Path] = LabelsOpt,
    split: str = typer.Option("test", help="val or test (the splits with dense labels)."),
    device: str = typer.Option("auto", help="torch device: auto, cpu, cuda, cuda:N."),
    cache_dir: Optional[Path] = CacheOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (segment/event x audio, visual, audio_visual, type_at_av, event_at_av; percent)."),
):
    """Evaluate with the paper's exact protocol (segment- and event-level F1)."""
    from .dataset import DatasetLayout
    from .report import print_results

    if (checkpoint is None) == (predictions is None):
        raise AvvpError("give exactly one of --checkpoint or --predictions")
    if predictions is not None:
        from .evaluate import evaluate_predictions
        from .predictions import read_predictions

        from .llp import Annotations

        labels_dir = labels or data
        if labels_dir is None:
            raise AvvpError("give --data DIR or --labels DIR (the LLP csv files)")
        annotations = Annotations(Path(labels_dir))
        filenames, pred = read_predictions(predictions, annotations.split(split).filenames)
        metrics = evaluate_predictions(filenames, pred, *annotations.dense())
    else:
        from avvp_stream.checkpoint import load_model

        from .fit import TensorSplit, evaluate_model

        layout = DatasetLayout.resolve(data, features, labels, cache_dir)
        model = load_model(checkpoint, resolve_device(device))
        metrics = evaluate_model(model, TensorSplit(layout.packed(split, model.config.features), next(model.parameters()).device), layout.dense())
    print_results(metrics, as_json, title=f"{split} split")


@app.command()
def extract(
    videos_dir: Path = typer.Argument(..., help="Folder of videos (mp4, mkv, webm, avi, mov...; audio-only files too)."),
    out_dir: Path = typer.Argument(..., help="Output: vggish/, res152/ and r2plus1d_18/ with one <name>.npy per video."),
    seconds: int = typer.Option(10, help="Snippets per video (LLP: 10). Shorter videos are padded, longer cut."),
    device: str = typer.Option("auto", help="torch device: auto, cpu, cuda, cuda:N."),
    random_weights: bool = typer.Option(False, "--random-weights", help="Randomly initialised networks, no weight files (smoke tests, benchmarks)."),
    vggish_raw: bool = typer.Option(False, "--vggish-raw", help="Raw 128-d VGGish embeddings instead of the release's PCA + 8-bit quantisation."),
    ray: bool = typer.Option(False, "--ray", help="Run on Ray Data, on a local Ray instance (127.0.0.1 only, no dashboard); the folders are the same. Needs the 'ray' extra (the error says how to install it)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Run on the Ray cluster at this address (implies --ray). Keep clusters on a trusted private network."),
    batch: int = typer.Option(4, help="Videos per batch through the networks."),
):
    """Extract LLP-format features (VGGish, ResNet-152 frames, R(2+1)D-18) from videos,
    so that your own videos can be used with `fit` and `eval`. Resumable: finished videos
    are skipped; a failing video is reported and the batch goes on (exit 1 if any failed)."""
    from avvp_stream.features.extractor import FeatureExtractor

    from .extract import extract_folder

    if seconds < 1 or batch < 1:
        raise AvvpError("--seconds and --batch must be at least 1")
    if ray or ray_address:
        from avvp_stream.collection import ExtractStages, FeatureFolders, media_files, run_collection
        from avvp_stream.features.spec import specs

        kwargs = {"device": device, "random_weights": random_weights, "vggish_postprocess": not vggish_raw}
        result = run_collection(ExtractStages(seconds), FeatureFolders(out_dir, specs()), media_files(videos_dir), out_dir,
                                extractor_kwargs=kwargs, backend="torch", batch=batch, ray_address=ray_address or "local")
        typer.echo(result.line(), err=True)
        return 1 if result.failed else 0
    summary = extract_folder(videos_dir, out_dir, lambda: FeatureExtractor(device=device, random_weights=random_weights,
                                                                     vggish_postprocess=not vggish_raw),
                             seconds, batch=batch)
    typer.echo(f"extracted {len(summary.done)}, already done {len(summary.skipped)}, failed {len(summary.failed)}", err=True)
    for name, reason in summary.failed.items():
        typer.echo(f"  failed {name}: {reason}", err=True)
    return 1 if summary.failed else 0


@app.command()
def info(checkpoint: Path = typer.Argument(..., help="Our checkpoint or the official MMIL_Net.pt.")):
    """Show a checkpoint's model configuration and training metadata as JSON."""
    if not checkpoint.is_file():  # said before torch loads
        raise AvvpError(f"checkpoint not found: {checkpoint}")
    from avvp_stream.checkpoint import read_checkpoint

    ck = read_checkpoint(checkpoint)
    n = sum(t.numel() for t in ck["state_dict"].values())
    meta = {k: v for k, v in ck["metadata"].items() if k in ("epoch", "val", "train_config")}
    print(json.dumps({"official": ck["official"], "parameters": n, "config": ck["config"].to_dict(), **meta}, indent=1))


def main() -> None:
    run_cli(app, "avvp-train")


if __name__ == "__main__":
    main()
