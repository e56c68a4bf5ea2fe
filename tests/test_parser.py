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


def parse(parser, feats, ids=None):
    out = []
    for i in range(len(feats[0])):
        parser.insert_snippet(feats[0][i], feats[1][i], feats[2][i], snippet=None if ids is None else ids[i])
        out += [r for r in parser.process() if r.final]
    return out + [r for r in parser.finish() if r.final]


def test_results_carry_the_identity_they_were_inserted_with(model):
    """Ids as a live run with drops gives them (0, 3, 4, 9, ...): results name each snippet
    by its own index, start and capture time, and the numbers are those of the plain
    positions (identity never changes the arithmetic)."""
    from avvp_stream.parser import SnippetId

    feats = features(14, seed=3)
    kept = [0, 3, 4, 9, 10, 11, 15, 16, 20, 21, 22, 23, 30, 31]
    ids = [SnippetId(k, float(k), 1000.0 + k) for k in kept]
    got = parse(OnlineParser(model, CommitPolicy(10, 0)), feats, ids)
    plain = parse(OnlineParser(model, CommitPolicy(10, 0)), feats)
    assert [r.snippet for r in got] == ids and [r.index for r in got] == kept
    assert [r.position for r in got] == list(range(14)) and [r.index for r in plain] == list(range(14))
    for a, b in zip(got, plain):
        np.testing.assert_array_equal(a.prob, b.prob)


def test_row_cache_is_keyed_by_snippet_and_stream(model):
    """Two parsers share one ONNX Runtime backend (one row cache): the same positions in
    two streams with different features never mix, each matches its own torch parse, and
    each snippet's rows are computed once per stream."""
    pytest.importorskip("onnxruntime")
    from avvp_stream.backends import create

    backend = create("onnxruntime", model, "cpu")
    a, b = features(16, seed=4), features(16, seed=5)
    pa, pb = OnlineParser(backend, CommitPolicy(10, 0)), OnlineParser(backend, CommitPolicy(10, 0))
    got = {"a": [], "b": []}
    for i in range(16):  # interleaved, as two streams on one engine would be
        for name, parser, f in (("a", pa, a), ("b", pb, b)):
            parser.insert_snippet(f[0][i], f[1][i], f[2][i])
            got[name] += [r for r in parser.process() if r.final]
    misses = backend.cache.misses
    for name, f in (("a", a), ("b", b)):
        want = parse(OnlineParser(model, CommitPolicy(10, 0)), f)
        for x, y in zip(got[name], want):
            np.testing.assert_allclose(x.prob, y.prob, atol=1e-5)
    assert misses == 32  # 16 snippets per stream, each computed once


def test_the_parser_module_does_not_need_torch():
    import subprocess
    import sys

    code = "import sys, avvp_stream.parser; sys.exit(int('torch' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
