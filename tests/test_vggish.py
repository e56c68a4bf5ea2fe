"""The VGGish front end against an independent NumPy computation of the same definition."""

import numpy as np
import pytest
import torch

from avvp_stream.features import vggish


def numpy_log_mel(signal: np.ndarray) -> np.ndarray:
    """Straight from the definition: loops over frames and bands, float64."""
    sr, win, hop, nfft = 16000, 400, 160, 512
    window = np.array([0.5 - 0.5 * np.cos(2 * np.pi * i / win) for i in range(win)])
    n_frames = 1 + (len(signal) - win) // hop
    spec = np.stack([np.abs(np.fft.rfft(signal[i * hop:i * hop + win] * window, nfft)) for i in range(n_frames)])

    def mel(hz):
        return 1127.0 * np.log(1.0 + hz / 700.0)

    bin_mel = mel(np.linspace(0, sr / 2, nfft // 2 + 1))
    edges = np.linspace(mel(125.0), mel(7500.0), 66)
    weights = np.zeros((nfft // 2 + 1, 64))
    for band in range(64):
        lo, mid, hi = edges[band], edges[band + 1], edges[band + 2]
        for k in range(1, nfft // 2 + 1):  # bin 0 (DC) stays zero
            m = bin_mel[k]
            weights[k, band] = max(0.0, min((m - lo) / (mid - lo), (hi - m) / (hi - mid)))
    return np.log(spec @ weights + 0.01)


def test_front_end_matches_numpy_reference():
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    signal = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    ours = vggish.log_mel(torch.from_numpy(signal)).numpy()
    ref = numpy_log_mel(signal)
    assert ours.shape == ref.shape == (1 + (32000 - 400) // 160, 64)
    np.testing.assert_allclose(ours, ref, atol=1e-9)
    ours32 = vggish.log_mel(torch.from_numpy(signal).float()).numpy()
    np.testing.assert_allclose(ours32, ref, atol=2e-3)


def test_a_tone_lights_its_mel_band():
    t = torch.arange(16000, dtype=torch.float64) / 16000
    mel = vggish.log_mel(torch.sin(2 * torch.pi * 1000 * t))
    band = int(mel.mean(0).argmax())
    edges = torch.linspace(float(vggish.hz_to_mel(torch.tensor(125.0))), float(vggish.hz_to_mel(torch.tensor(7500.0))), 66)
    assert edges[band] <= vggish.hz_to_mel(torch.tensor(1000.0)) <= edges[band + 2]


def test_examples_are_consecutive_096s_blocks_and_batched():
    wave = torch.randn(3, 160000, dtype=torch.float64)
    ex = vggish.examples(wave)
    assert ex.shape == (3, 10, 96, 64)  # 998 frames -> 10 examples, as LLP's 10 per clip
    torch.testing.assert_close(ex[1], vggish.examples(wave[1]))  # batch invariance
    torch.testing.assert_close(ex[0, 3], vggish.log_mel(wave[0])[288:384])
    assert vggish.examples(wave[0, :50000], num=10).shape == (10, 96, 64)
    with pytest.raises(ValueError):
        vggish.examples(torch.zeros(8000))


def test_network_shapes_and_postprocessing():
    torch.manual_seed(0)
    net = vggish.VGGish(postprocess=True).eval()
    x = vggish.examples(torch.randn(16000 * 3)).float()
    with torch.no_grad():
        q = net(x)
        net.postprocess = False
        raw = net(x)
    assert q.shape == raw.shape == (3, 128)
    assert (raw >= 0).all()  # embedding after ReLU
    assert q.min() >= 0 and q.max() <= 255 and torch.equal(q, q.floor())
    torch.testing.assert_close(q, torch.floor((raw.clamp(-2, 2) + 2) * 255 / 4))  # identity PCA


def test_release_weights_load_with_pca():
    torch.manual_seed(1)
    source = vggish.VGGish(postprocess=False)
    port = {k: v for k, v in source.state_dict().items() if not k.startswith("pca")}  # torchvggish keys
    eig = torch.linalg.qr(torch.randn(128, 128))[0]
    means = torch.randn(128) * 0.1
    net = vggish.VGGish(postprocess=True).eval()
    net.load_release(port, {"pca_eigen_vectors": eig.numpy(), "pca_means": means.numpy()})
    x = vggish.examples(torch.randn(16000)).float()
    with torch.no_grad():
        raw = source.eval()(x)
        expected = torch.floor(((raw - means) @ eig.T).clamp(-2, 2).add(2) * 255 / 4)
        torch.testing.assert_close(net(x), expected)


def test_weight_files_with_numpy_arrays_load_safely(tmp_path):
    import numpy as np
    import pytest as _pytest

    from avvp_stream.errors import AvvpError
    from avvp_stream.features.extractor import _load_state

    torch.save({"pca_eigen_vectors": np.eye(128, dtype=np.float32), "pca_means": np.zeros(128)}, tmp_path / "pca.pth")
    state = _load_state(tmp_path / "pca.pth")
    assert state["pca_eigen_vectors"].shape == (128, 128)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with _pytest.raises(AvvpError, match="cannot read weights safely"):
        _load_state(tmp_path / "evil.pth")
