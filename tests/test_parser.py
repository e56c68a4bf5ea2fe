import numpy as np
import pytest
import torch

from avvp_stream.model import HAN
from avvp_stream.parser import CommitPolicy, OnlineParser, aggregate


def test_aggregate_is_the_mean_over_covering_windows():
    windows = [(0, np.array([1.0, 1.0])), (1, np.array([3.0, 3.0])), (4, np.array([5.0]))]
    mean, count = aggregate(windows, 6)
    np.testing.assert_allclose(mean, [1, 2, 3, 0, 5, 0])
    np.testing.assert_array_equal(count, [1, 2, 1, 0, 1, 0])
    with pytest.raises(ValueError):
        aggregate([], 3)


def features(t, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((t, 128)).astype(np.float32), rng.random((t, 8, 2048)).astype(np.float32),
            rng.standard_normal((t, 512)).astype(np.float32))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = HAN().eval()
    with torch.no_grad():  # make the video-level gate open for some classes
        m.fc_prob.bias.add_(2.0)
    return m


def offline(model, a, v, s):
    with torch.no_grad():
        video, _, _, snippet = model(torch.from_numpy(a)[None], torch.from_numpy(v.reshape(1, -1, 2048)), torch.from_numpy(s)[None])
    gate = (video >= 0.5).float()[:, None, None, :]
    return (snippet * gate)[0].numpy()


@pytest.mark.parametrize("t", [10, 4])
def test_full_lookahead_equals_offline_han(model, t):
    a, v, s = features(t)
    parser = OnlineParser(model, CommitPolicy(window=10, lookahead=9, full_windows_only=True))
    results = []
    for i in range(t):
        parser.insert_snippet(a[i], v[i], s[i])
        results += parser.process()
    results += parser.finish()
    final = {r.index: r for r in results if r.final}
    assert sorted(final) == list(range(t))
    expected = offline(model, a, v, s)
    got = np.stack([final[i].prob for i in range(t)])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    ref = expected >= 0.5
    assert all((final[i].audio == ref[i, 0]).all() and (final[i].visual == ref[i, 1]).all() for i in range(t))
    assert any(not r.final for r in results)  # provisional labels came first


def test_live_snippets_are_final_after_lookahead(model):
    a, v, s = features(14, seed=1)
    parser = OnlineParser(model, CommitPolicy(window=10, lookahead=2))
    finals = []
    for i in range(14):
        parser.insert_snippet(a[i], v[i].mean(0), s[i])
        out = parser.process()
        finals += [r.index for r in out if r.final]
        assert finals == list(range(max(0, i + 1 - 2)))  # snippet k final once k + 2 arrived
        assert [r.index for r in out if not r.final] == list(range(max(0, i + 1 - 2), i + 1))
    finals += [r.index for r in parser.finish() if r.final]
    assert finals == list(range(14))
    assert len(parser._features) <= 10  # bounded memory


def test_batched_windows_equal_one_by_one(model):
    a, v, s = features(13, seed=2)
    one = OnlineParser(model, CommitPolicy(window=5, lookahead=4, full_windows_only=True))
    bulk = OnlineParser(model, CommitPolicy(window=5, lookahead=4, full_windows_only=True))
    r1 = []
    for i in range(13):
        one.insert_snippet(a[i], v[i], s[i])
        bulk.insert_snippet(a[i], v[i], s[i])
        r1 += [r for r in one.process() if r.final]
    r1 += [r for r in one.finish() if r.final]
    r2 = [r for r in bulk.finish() if r.final]
    assert [r.index for r in r1] == [r.index for r in r2] == list(range(13))
    for x, y in zip(r1, r2):
        np.testing.assert_allclose(x.prob, y.prob, atol=1e-5)
