"""Binary snippet predictions of any method, in the format of the reference npz:
``filenames`` (N,) and ``pred`` (N, 2, 25, T) with index 0 audio and 1 visual."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avvp_stream.classes import NUM_CLASSES
from avvp_stream.errors import AvvpError


def read_predictions(path: str | Path, split_filenames: list[str]) -> tuple[list[str], np.ndarray]:
    """Load and check predictions against a split; returned in the split's order."""
    path = Path(path)
    if not path.is_file():
        raise AvvpError(f"predictions file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "filenames" not in npz or "pred" not in npz:
                raise AvvpError(f"{path}: needs arrays 'filenames' and 'pred', has {sorted(npz.files)}")
            filenames = [str(f) for f in npz["filenames"]]
            pred = np.asarray(npz["pred"])
    except AvvpError:
        raise
    except Exception as exc:
        raise AvvpError(f"{path}: not a readable npz file ({exc})") from None
    if pred.ndim != 4 or pred.shape[:3] != (len(filenames), 2, NUM_CLASSES):
        raise AvvpError(f"{path}: pred has shape {pred.shape}, expected ({len(filenames)}, 2, {NUM_CLASSES}, T)")
    if not np.isin(pred, (0, 1)).all():
        raise AvvpError(f"{path}: pred must be binary (0/1); threshold probabilities first")
    index = {name: i for i, name in enumerate(filenames)}
    missing = [f for f in split_filenames if f not in index]
    if missing:
        raise AvvpError(f"{path}: no predictions for {len(missing)} videos of the split, e.g. {missing[0]}")
    order = [index[f] for f in split_filenames]
    return list(split_filenames), pred[order]
