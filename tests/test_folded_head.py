"""The folded head (export/folded_head.py) is HAN's function, and the streaming row
cache (backends/row_cache.py) gives exactly what the full recompute gives."""

import numpy as np
import pytest
import torch

from avvp_stream import load_model
from avvp_stream.backends import create
from avvp_stream.backends.onnxruntime_backend import OnnxRuntimeBackend
from avvp_stream.backends.row_cache import RowCache
from avvp_stream.head.folded import FoldedHead, can_fold
from avvp_stream.backends.onnx_cache import cached_streaming_head
from avvp_stream.model import HAN, HANConfig, pool_frames

from conftest import shared_file


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HAN().eval()


def inputs(b, t, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, t, d, generator=g) for d in (128, 2048, 512)]


@pytest.mark.parametrize("b, t", [(1, 10), (1, 1), (4, 7), (2, 23)])
def test_folded_head_is_han(model, b, t):
    x = inputs(b, t, seed=b * 100 + t)
    with torch.inference_mode():
        video, _, _, snippet = model(*x)
        got_video, got_snippet = FoldedHead(model)(*x)
    torch.testing.assert_close(got_video, video, atol=1e-5, rtol=0)
    torch.testing.assert_close(got_snippet, snippet, atol=1e-5, rtol=0)


def test_folded_official_checkpoint_reproduces_golden_outputs(tmp_path):
    golden = torch.load(shared_file("reference", "han_golden.pt"), weights_only=True)
    torch.save(golden["state_dict"], tmp_path / "MMIL_Net.pt")
    model = load_model(tmp_path / "MMIL_Net.pt")
    x = golden["inputs"]
    with torch.inference_mode():
        frames = pool_frames(x["video_s"], 8)  # the backends take frame means, as the parser keeps them
        video, snippet = FoldedHead(model)(x["audio"], frames, x["video_st"])
    torch.testing.assert_close(video, golden["outputs"]["global_prob"], atol=1e-5, rtol=0)
    torch.testing.assert_close(snippet, golden["outputs"]["frame_prob"], atol=1e-5, rtol=0)


def test_only_the_official_architecture_folds():
    assert can_fold(HAN())
    for config in (HANConfig(temporal="transformer"), HANConfig(pooling="max"), HANConfig(nhead=4)):
        assert not can_fold(HAN(config))
        with pytest.raises(ValueError):
            FoldedHead(HAN(config))


def test_row_cache_plans_known_and_new_rows():
    calls = []

    def rows(a, v2, v3):  # a stand-in row function that records what it was asked for
        calls.append(len(a))
        return np.stack([a[:, :4], v3[:, :4]], axis=1)

    cache = RowCache((2, 4), capacity=6)
    rng = np.random.default_rng(0)
    stream = [rng.standard_normal((12, d)).astype(np.float32) for d in (128, 2048, 512)]

    def run(*x):
        plan = cache.plan(*x)
        computed = rows(*plan.inputs) if plan.keys else np.zeros((0, 2, 4), np.float32)
        cache.keep(plan, computed)
        return np.concatenate([plan.known, computed])[plan.index]

    for s in range(3):  # sliding windows: all new, then one new row each
        window = [a[None, s:s + 5] for a in stream]
        np.testing.assert_array_equal(run(*window), rows(*(a[0] for a in window))[None])
    assert calls[::2] == [5, 1, 1]
    # A batch of windows: rows 1-3 are known; row 0 was evicted (capacity 6) and is
    # computed again; row 7 appears twice and is computed once.
    batch = [np.stack([a[0:4], a[[7, 7, 8, 9]]]) for a in stream]
    np.testing.assert_array_equal(run(*batch), rows(*(a.reshape(-1, a.shape[-1]) for a in batch)).reshape(2, 4, 2, 4))
    assert calls[-2] == len([0, 7, 8, 9])
    assert (cache.misses, cache.hits) == (5 + 1 + 1 + 4, 4 + 4 + 4)  # a repeat within a call is a hit


def test_streaming_cache_equals_the_full_recompute(model):
    backend = create("onnxruntime", model, "cpu")
    assert backend.cache is not None  # the default on a CPU for the official architecture
    reference = create("torch", model, "cpu")
    rng = np.random.default_rng(3)
    stream = [rng.standard_normal((40, d)).astype(np.float32) for d in (128, 2048, 512)]
    for s in range(31):  # a live stream: one new snippet per window
        window = [a[None, s:s + 10] for a in stream]
        for got, want in zip(backend.head(*window), reference.head(*window)):
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert (backend.cache.misses, backend.cache.hits) == (40, 31 * 10 - 40)
    offline = [np.stack([a[s:s + 10] for s in range(0, 31, 3)]) for a in stream]  # a batch of windows
    for got, want in zip(backend.head(*offline), reference.head(*offline)):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    small = OnnxRuntimeBackend(cached_streaming_head(model), streaming=True, capacity=12)  # evictions
    for s in (0, 5, 1, 0):
        window = [a[None, s:s + 10] for a in stream]
        for got, want in zip(small.head(*window), reference.head(*window)):
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_architectures_that_do_not_fold_run_the_whole_graph():
    torch.manual_seed(1)
    model = HAN(HANConfig(temporal="transformer")).eval()
    backend = create("onnxruntime", model, "cpu")
    assert backend.cache is None
    x = [a.numpy() for a in inputs(2, 6, seed=5)]
    for got, want in zip(backend.head(*x), create("torch", model, "cpu").head(*x)):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
