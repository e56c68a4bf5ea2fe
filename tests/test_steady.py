"""Steady labels (binarize.py): hysteresis and minimum durations on constructed
probability sequences, the online form against the offline one, and the event stream
of the parse loop with and without them."""

from __future__ import annotations

import numpy as np
import pytest

from avvp_stream.binarize import Binarize, OnlineBinarize

P = np.array([.6, .4, .6, .6, .4, .45, .6, .2, .2, .2, .7, .2])


def bits(x) -> str:
    return "".join("1" if v else "0" for v in np.asarray(x).reshape(-1))


def test_plain_is_the_threshold_exactly():
    rng = np.random.default_rng(0)
    prob = rng.random((200, 2, 25))
    assert Binarize(0.5).plain and np.array_equal(Binarize(0.5)(prob), prob >= 0.5)
    assert Binarize(0.3)(P).tolist() == (P >= 0.3).tolist()


def test_hysteresis_keeps_an_event_through_a_dip_above_the_offset():
    assert bits(P >= 0.5) == "101100100010"
    assert bits(Binarize(0.5, 0.3)(P)) == "111111100010"  # 0.4 and 0.45 stay above 0.3
    assert bits(Binarize(0.5, 0.42)(np.array([.6, .45, .6, .4, .45, .6]))) == "111001"  # 0.4 ends it, 0.45 does not
    # an event starts only at the onset: 0.45 after an off snippet starts nothing
    assert bits(Binarize(0.5, 0.3)(np.array([.2, .45, .45, .2]))) == "0000"


def test_minimum_event_drops_flicker_and_keeps_the_whole_event():
    assert bits(Binarize(0.5, None, 2, 1)(P)) == "001100000000"
    assert bits(Binarize(0.5, None, 3, 1)(np.array([.6, .6, .2, .6, .6, .6, .6]))) == "0001111"
    # confirmed events are on from their first snippet, not from the confirmation
    assert bits(Binarize(0.5, None, 4, 1)(np.full(6, 0.9))) == "111111"


def test_minimum_gap_fills_short_gaps_only():
    assert bits(Binarize(0.5, None, 1, 2)(P)) == "111100100010"  # the 1-snippet gap is filled
    assert bits(Binarize(0.5, None, 1, 3)(P)) == "111111100010"  # and the 2-snippet one
    # a gap still open when the stream ends is off (the event ended where the gap began)
    assert bits(Binarize(0.5, None, 1, 3)(np.array([.9, .9, .1, .1]))) == "1100"
    # refilling needs the onset: a value between offset and onset does not end the gap
    assert bits(Binarize(0.5, 0.3, 1, 2)(np.array([.9, .2, .4, .2, .2]))) == "10000"


def test_everything_together():
    assert bits(Binarize(0.5, 0.4, 2, 3)(P)) == "111111100000"


def test_online_labels_wait_at_most_the_delay_and_equal_offline():
    rng = np.random.default_rng(1)
    prob = np.clip(rng.normal(0.5, 0.2, (300, 2, 25)), 0, 1)
    for rule in (Binarize(0.5, 0.3, 2, 2), Binarize(0.6, 0.35, 3, 1), Binarize(0.5, None, 1, 4)):
        online = OnlineBinarize(rule, (2, 25))
        out = []
        for p in prob:
            out.extend(online.push(p))
            assert online.pushed - online.emitted <= rule.delay
        out.extend(online.flush())
        assert np.array_equal(np.stack(out), rule(prob))


def test_steadier_means_fewer_events_on_a_noisy_hover():
    rng = np.random.default_rng(2)
    hover = np.clip(0.5 + 0.08 * rng.standard_normal(600), 0, 1)
    plain, steady = Binarize(0.5)(hover), Binarize(0.5, 0.3, 2, 2)(hover)
    starts = lambda x: int(np.count_nonzero(np.diff(x.astype(int), prepend=0) == 1))  # noqa: E731
    assert starts(steady) < starts(plain) / 10


def test_bad_thresholds_are_refused():
    with pytest.raises(ValueError):
        Binarize(0.4, 0.6)
    with pytest.raises(ValueError):
        Binarize(0.5, None, 0, 1)


def test_the_parse_loop_forms_events_from_steady_labels():
    """The event stream: plain thresholds flicker, steady labels give one event; the
    snippet records keep the plain labels either way."""
    from avvp_stream.events import EventTracker
    from avvp_stream.parser import SnippetId, SnippetResult
    from avvp_stream.pipeline import _Emitter
    from avvp_stream.writers.base import Writer

    class Collect(Writer):
        def __init__(self):
            self.snippets, self.events = [], []

        def snippet(self, index, start, labels, final, captured_at):
            self.snippets.append(labels["audio"][0])

        def event(self, ev):
            self.events.append(ev)

    dog = [.9, .45, .9, .9, .2, .9, .9, .9, .1, .1, .1]
    results = []
    for k, p in enumerate(dog):
        prob = np.zeros((2, 25))
        prob[0, 0] = p
        results.append(SnippetResult(SnippetId(k, float(k)), prob, True))
    for rule, ended in ((Binarize(0.5), [(0, 1), (2, 4), (5, 8)]), (Binarize(0.5, 0.3, 2, 2), [(0, 8)])):
        out = Collect()
        emitter = _Emitter(out, EventTracker(), None, False, rule)
        emitter.emit(results)
        emitter.close()
        assert out.snippets == [p >= 0.5 for p in dog]
        assert [(e.onset, e.offset) for e in out.events if e.state == "end" and e.modality == "audio"] == ended


def test_dropped_snippets_restart_the_steady_labels():
    """Live input dropped snippets 3-4: the event open before the gap ends there (nothing
    is known of the gap), and after it a probability between offset and onset does not
    carry the old event on: it must reach the onset again."""
    from avvp_stream.events import EventTracker
    from avvp_stream.parser import SnippetId, SnippetResult
    from avvp_stream.pipeline import _Emitter
    from avvp_stream.writers.base import Writer

    class Collect(Writer):
        def __init__(self):
            self.events = []

        def event(self, ev):
            self.events.append(ev)

    out = Collect()
    emitter = _Emitter(out, EventTracker(), None, False, Binarize(0.5, 0.3, 2, 2))
    for k, p in ((0, .9), (1, .9), (2, .9), (5, .4), (6, .4), (7, .9), (8, .9)):
        prob = np.zeros((2, 25))
        prob[0, 0] = p
        emitter.emit([SnippetResult(SnippetId(k, float(k)), prob, True)])
    emitter.close()
    ended = [(e.onset, e.offset) for e in out.events if e.state == "end" and e.modality == "audio"]
    assert ended == [(0.0, 3.0), (7.0, 9.0)]
