import numpy as np
import pytest

from avvp_stream.classes import CLASSES
from avvp_stream.errors import AvvpError
from avvp_stream.train.llp import Annotations, dense_matrix, read_dense_labels, read_weak_labels, video_id


def test_real_llp_files_parse(llp_dir):
    ann = Annotations(llp_dir)
    sizes = {split: len(ann.split(split).filenames) for split in ("train", "val", "test")}
    assert sizes == {"train": 10000, "val": 649, "test": 1200}
    train = ann.split("train")
    assert train.labels.shape == (10000, 25)
    assert train.labels.sum(1).min() >= 1
    assert train.filenames[0] == "BjCEufrlXm4_20_30"
    assert np.flatnonzero(train.labels[0]).tolist() == [CLASSES.index("Speech"), CLASSES.index("Dog")]
    assert any(f.startswith("-") for f in train.filenames)
    assert all(len(video_id(f)) == 11 for f in train.filenames)
    audio, visual = ann.dense()
    assert sum(len(v) for v in audio.values()) == 4131
    assert sum(len(v) for v in visual.values()) == 2495
    test = set(ann.split("test").filenames)
    assert len(test & set(audio)) == 1195


def test_dense_matrix_follows_slice_semantics():
    from avvp_stream.train.llp import DenseEvent

    gt = dense_matrix([DenseEvent(2, 5, 1), DenseEvent(9, 0, 2)])
    assert gt[1].tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    assert gt[2].sum() == 0  # "9 0" rows exist in the release and mark nothing


@pytest.mark.parametrize(
    "content, message",
    [
        ("filename\tevent_labels\nabcdefghijk_0_10\tSpeech,Unicorn\n", r"bad.csv:2: unknown class 'Unicorn'"),
        ("filename\tevent_labels\n", r"bad.csv: the split has no videos"),
        ("name\tlabels\nabcdefghijk_0_10\tSpeech\n", r"bad.csv:1: expected the header"),
        ("filename\tevent_labels\nabcdefghijk_0_10\tSpeech\textra\n", r"bad.csv:2: expected 2 tab-separated fields"),
    ],
)
def test_bad_weak_label_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(AvvpError, match=message):
        read_weak_labels(path)


def test_bad_dense_label_files(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("filename\tonset\toffset\tevent_labels\nabcdefghijk_0_10\t1\tx\tDog\n")
    with pytest.raises(AvvpError, match="bad.csv:2: onset/offset must be whole seconds"):
        read_dense_labels(path)
    path.write_text("filename\tonset\toffset\tevent_labels\nabcdefghijk_0_10\t1\t3\tdog\n")
    with pytest.raises(AvvpError, match="bad.csv:2: unknown class 'dog'"):
        read_dense_labels(path)
    with pytest.raises(AvvpError, match="annotation file not found"):
        read_dense_labels(tmp_path / "nope.csv")
