"""A short real training run on generated data must learn far beyond chance."""

import numpy as np
import pytest

from avvp_stream import load_model
from avvp_stream.model import HANConfig
from avvp_stream.train.dataset import DatasetLayout
from avvp_stream.train.evaluate import evaluate_predictions
from avvp_stream.train.fit import TensorSplit, TrainConfig, evaluate_model, fit
from avvp_stream.train.llp import dense_matrix
from avvp_stream.train.synth import SynthSpec, generate


def chance_scores(filenames, dense, seed=0):
    """Random snippet labels drawn at the ground truth's own positive rate per modality."""
    rng = np.random.default_rng(seed)
    rates = [np.mean([dense_matrix(d.get(f)).mean() for f in filenames]) for d in dense]
    pred = np.stack([(rng.random((len(filenames), 25, 10)) < r) for r in rates], axis=1).astype(np.uint8)
    return evaluate_predictions(filenames, pred, *dense)


@pytest.mark.slow
def test_short_training_beats_chance_by_a_wide_margin(tmp_path):
    data = generate(tmp_path / "data", SynthSpec(train=240, val=40, test=80, seed=5))
    layout = DatasetLayout.resolve(data, None, None, tmp_path / "cache")
    dense = layout.dense()
    result = fit(layout.packed("train"), layout.packed("val"), dense, tmp_path / "run",
                 HANConfig(), TrainConfig(epochs=8, lr_step=6, seed=0), log=lambda m: None)
    assert result.best_checkpoint.is_file() and len(result.history) == 8
    model = load_model(result.best_checkpoint)
    test = TensorSplit(layout.packed("test"), "cpu")
    trained = evaluate_model(model, test, dense)["segment"]
    chance = chance_scores(test.filenames, dense)["segment"]
    empty = evaluate_predictions(test.filenames, np.zeros((len(test), 2, 25, 10), np.uint8), *dense)["segment"]
    for key in ("audio", "visual", "event_at_av"):
        assert trained[key] > chance[key] + 15, (key, trained, chance)
    assert trained["type_at_av"] > max(chance["type_at_av"], empty["type_at_av"]) + 10, (trained, chance, empty)
