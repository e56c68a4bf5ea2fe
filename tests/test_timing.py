import numpy as np

from avvp_stream.features.timing import NearestFramePicker, nearest_indices, snippet_times


def pick_all(frames, targets):
    picker = NearestFramePicker(frames)
    return [picker.pick(float(t)) for t in targets]


def brute_force(ts, targets):
    return np.array([min(range(len(ts)), key=lambda i: (abs(ts[i] - t), i)) for t in targets])


def test_nearest_frame_rule_on_variable_frame_rate():
    rng = np.random.default_rng(0)
    for _ in range(20):
        ts = np.cumsum(rng.uniform(0.005, 0.2, size=rng.integers(1, 80)))
        targets = snippet_times(0.0) if rng.random() < 0.5 else np.sort(rng.uniform(0, ts[-1] + 0.5, 16))
        expected = brute_force(ts, targets)
        np.testing.assert_array_equal(nearest_indices(ts, targets), expected)
        picked = pick_all(((t, i) for i, t in enumerate(ts)), targets)
        np.testing.assert_array_equal(picked, expected)


def test_snippet_times_and_ties():
    np.testing.assert_allclose(snippet_times(3.0), 3.0 + np.arange(8) / 8)
    ts = np.array([0.0, 0.25])
    assert nearest_indices(ts, np.array([0.125])).tolist() == [0]  # a tie goes to the earlier frame
    assert pick_all([(0.0, "a"), (0.25, "b")], [0.125, 0.2, 5.0]) == ["a", "b", "b"]
    assert NearestFramePicker(iter([])).pick(0.0) is None
