"""Generated data, feature folders and the packed split cache."""

import os
import shutil

import numpy as np
import pytest

from avvp_stream.errors import AvvpError
from avvp_stream.train.dataset import DatasetLayout
from avvp_stream.train.feature_store import folder_shapes, load_video
from avvp_stream.train.llp import ALL_FILES, Annotations
from avvp_stream.train.synth import SynthSpec, generate


def test_synth_writes_the_llp_layout(small_dataset):
    for name in ALL_FILES:
        assert (small_dataset / name).is_file(), name
    ann = Annotations(small_dataset)
    train, test = ann.split("train"), ann.split("test")
    assert len(train.filenames) == 24 and len(test.filenames) == 12
    for kind, shape in folder_shapes().items():
        files = sorted((small_dataset / "feats" / kind).glob("*.npy"))
        assert len(files) == 48
        arr = np.load(files[0])
        assert arr.shape == shape and arr.dtype == np.float32
    audio, visual = ann.dense()
    assert set(audio) | set(visual) <= set(test.filenames) | set(ann.split("val").filenames)
    # weak labels are the union of the dense events
    for i, name in enumerate(test.filenames):
        classes = {e.class_index for e in audio.get(name, []) + visual.get(name, [])}
        assert classes == set(np.flatnonzero(test.labels[i]).tolist())


def test_synth_has_every_event_kind_and_is_deterministic(tmp_path):
    spec = SynthSpec(train=1, val=1, test=150, seed=11)
    a = generate(tmp_path / "a", spec)
    audio, visual = Annotations(a).dense()
    kinds = {"audio_only": 0, "visual_only": 0, "av_aligned": 0, "av_offset": 0}
    for name in set(audio) | set(visual):
        ea = {e.class_index: (e.onset, e.offset) for e in audio.get(name, [])}
        ev = {e.class_index: (e.onset, e.offset) for e in visual.get(name, [])}
        for c in set(ea) | set(ev):
            if c not in ev:
                kinds["audio_only"] += 1
            elif c not in ea:
                kinds["visual_only"] += 1
            else:
                kinds["av_aligned" if ea[c] == ev[c] else "av_offset"] += 1
    assert all(n > 5 for n in kinds.values()), kinds
    b = generate(tmp_path / "b", spec)
    assert (a / "AVVP_test_pd.csv").read_text() == (b / "AVVP_test_pd.csv").read_text()
    name = sorted(os.listdir(a / "feats" / "res152"))[0]
    np.testing.assert_array_equal(np.load(a / "feats/res152" / name), np.load(b / "feats/res152" / name))
    assert generate(tmp_path / "a", spec) == a  # same spec again: reused, not an error
    with pytest.raises(AvvpError, match="not empty"):
        generate(tmp_path / "a", SynthSpec(train=1, val=1, test=2, seed=12))


def test_packed_split_equals_per_file_features(small_dataset, tmp_path):
    layout = DatasetLayout.resolve(small_dataset, None, None, tmp_path / "cache")
    packed = layout.packed("train")
    weak = layout.weak("train")
    assert packed.filenames == weak.filenames
    np.testing.assert_array_equal(packed.labels, weak.labels)
    for i in (0, 7, 23):
        audio, res152, r2p1d = load_video(layout.features_dir, weak.filenames[i])
        np.testing.assert_array_equal(packed.audio[i], audio)
        np.testing.assert_allclose(packed.video_2d[i], res152.reshape(10, 8, 2048).mean(1), atol=1e-6)
        np.testing.assert_array_equal(packed.video_3d[i], r2p1d)
    assert isinstance(packed.audio, np.memmap)


def test_pack_is_built_once_and_rebuilt_when_a_file_changes(small_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_dataset, data)
    cache = tmp_path / "cache"
    layout = DatasetLayout.resolve(data, None, None, cache)
    first = layout.packed("val")
    dirs = sorted(p for p in cache.iterdir() if not p.name.startswith("."))
    meta_mtime = (dirs[0] / "meta.json").stat().st_mtime_ns
    layout.packed("val")
    assert sorted(cache.iterdir()) == dirs and (dirs[0] / "meta.json").stat().st_mtime_ns == meta_mtime
    vid = first.filenames[0][:11]
    np.save(data / "feats" / "vggish" / f"{vid}.npy", np.full((10, 128), 7.0, np.float32))
    second = layout.packed("val")
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 2
    assert (second.audio[0] == 7.0).all()


def test_bad_feature_files_name_the_file(small_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_dataset, data)
    layout = DatasetLayout.resolve(data, None, None, tmp_path / "cache")
    vid = layout.weak("test").filenames[2][:11]
    target = data / "feats" / "res152" / f"{vid}.npy"
    np.save(target, np.zeros((10, 2048), np.float32))
    with pytest.raises(AvvpError, match=rf"res152/{vid}.npy: shape \(10, 2048\), expected \(80, 2048\)"):
        layout.packed("test")
    target.unlink()
    with pytest.raises(AvvpError, match=rf"missing feature file .*res152/{vid}.npy"):
        layout.packed("test")
    target.write_bytes(b"garbage")
    with pytest.raises(AvvpError, match=rf"res152/{vid}.npy: not a readable .npy"):
        layout.packed("test")
    assert not any(p.name.startswith(".") for p in (tmp_path / "cache").iterdir())  # no partial packs left


def test_layout_errors(tmp_path):
    with pytest.raises(AvvpError, match="give --data DIR"):
        DatasetLayout.resolve(None, tmp_path, None)
    with pytest.raises(AvvpError, match="labels folder not found"):
        DatasetLayout.resolve(tmp_path / "nope", None, None)
    (tmp_path / "AVVP_train.csv").write_text("filename\tevent_labels\nabcdefghijk_0_10\tDog\n")
    with pytest.raises(AvvpError, match="features folder not found"):
        DatasetLayout.resolve(tmp_path, None, None).packed("train")
