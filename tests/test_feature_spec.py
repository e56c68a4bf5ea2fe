"""A feature is declared once (``avvp_stream/features/spec.py``): a made-up fourth one
(``colour_feature.py``: its spec and one registration) goes end to end: extraction into an
LLP folder, the packed split, HAN's input (training step, checkpoint), the folded head
and the row cache, and the parser."""

import hashlib
import shutil

import numpy as np
import pytest
import torch

from avvp_stream.checkpoint import load_model, save_checkpoint
from avvp_stream.features import spec as feature_spec
from avvp_stream.features.extractor import FeatureExtractor
from avvp_stream.features.spec import OFFICIAL
from avvp_stream.model import HAN, HANConfig
from avvp_stream.parser import CommitPolicy, OnlineParser
from avvp_stream.weights import WeightFile
from colour_feature import COLOUR, LOUDNESS
from media import make_media

FOUR = (*OFFICIAL, "colour")


@pytest.fixture
def colour():
    with feature_spec.registered(COLOUR) as spec:
        yield spec


@pytest.fixture
def loudness():
    with feature_spec.registered(LOUDNESS) as spec:
        yield spec


def test_the_official_specs_are_what_han_was_trained_on():
    audio, v2d, v3d = feature_spec.specs()
    assert (audio.dim, v2d.dim, v3d.dim) == (128, 2048, 512)
    assert (audio.folder, v2d.folder, v3d.folder) == ("vggish", "res152", "r2plus1d_18")
    assert (audio.projection, v2d.projection, v3d.projection) == ("fc_a", "fc_v", "fc_st")
    assert v2d.per_frame and v2d.rows == 8 and not v3d.per_frame
    # The official checkpoint's key layout is unchanged by the generalisation.
    keys = set(HAN().state_dict())
    assert {"fc_a.weight", "fc_v.weight", "fc_st.weight", "fc_fusion.weight"} <= keys
    assert not any(k.startswith("fc_audio_fusion") for k in keys)


def test_bad_specs_and_configs_are_refused(colour):
    with pytest.raises(ValueError, match="modality"):
        feature_spec.FeatureSpec(name="x", dim=1, modality="smell", consumes="frames", count=1, network="n",
                                 build=None, prepare=None, example=(1,))
    with pytest.raises(ValueError, match="unknown feature"):
        HANConfig(features=("audio", "nope"))
    with pytest.raises(ValueError, match="both streams"):
        HANConfig(features=("video_2d", "colour"))
    with pytest.raises(ValueError, match="official"):
        feature_spec.unregister("audio")
    # old checkpoints named the three dimensions: accepted when they are the specs'
    assert HANConfig.from_dict({"audio_dim": 128, "video_2d_dim": 2048, "video_3d_dim": 512,
                                "frames_per_snippet": 8}) == HANConfig()
    with pytest.raises(ValueError, match="audio_dim"):
        HANConfig.from_dict({"audio_dim": 64})


def test_a_fourth_feature_end_to_end(colour, tmp_path):
    from avvp_stream.train.extract import extract_folder
    from avvp_stream.train.feature_store import folder_shapes, pack_split
    from avvp_stream.train.fit import TensorSplit, TrainConfig, make_optimizer, train_step
    from avvp_stream.train.llp import read_weak_labels

    # Extraction: one LLP folder per feature, the new one beside the official three.
    videos = tmp_path / "videos"
    videos.mkdir()
    make_media(videos / "aaaaaaaaaaa.mp4", seconds=10.0, size=(32, 24), tone_hz=300.0)

    extractor = FeatureExtractor(device="cpu", random_weights=True, features=FOUR)
    assert extractor.names == FOUR and set(extractor.networks) == {"vggish", "resnet152", "r2plus1d_18", "colour_net"}
    feats = tmp_path / "feats"
    summary = extract_folder(videos, feats, extractor, batch=2)
    assert summary.done == ["aaaaaaaaaaa.mp4"] and not summary.failed
    for folder in folder_shapes(FOUR):  # a second video for the split: the same features under another id
        shutil.copy(feats / folder / "aaaaaaaaaaa.npy", feats / folder / "bbbbbbbbbbb.npy")
    assert folder_shapes(FOUR)["colour"] == (10, 16)
    for folder, shape in folder_shapes(FOUR).items():
        for vid in ("aaaaaaaaaaa", "bbbbbbbbbbb"):
            assert np.load(feats / folder / f"{vid}.npy").shape == shape, folder
    colour_a = np.load(feats / "colour" / "aaaaaaaaaaa.npy")
    assert np.isfinite(colour_a).all() and colour_a.std() > 0

    # The packed split: one array per feature, in HAN's input order.
    csv = tmp_path / "train.csv"
    csv.write_text("filename\tevent_labels\naaaaaaaaaaa_0_10\tSpeech\nbbbbbbbbbbb_0_10\tDog,Cat\n")
    packed = pack_split(feats, read_weak_labels(csv), tmp_path / "cache", features=FOUR)
    assert list(packed.arrays) == list(FOUR) and packed.colour.shape == (2, 10, 16)
    np.testing.assert_allclose(packed.colour[0], colour_a)
    np.testing.assert_allclose(packed.video_2d[0], np.load(feats / "res152" / "aaaaaaaaaaa.npy").reshape(10, 8, -1).mean(1),
                               rtol=1e-6)
    assert pack_split(feats, read_weak_labels(csv), tmp_path / "cache").arrays.keys() == set(OFFICIAL)

    # HAN's input: its own projection into the visual stream, fused with the other two.
    torch.manual_seed(0)
    config = HANConfig(features=FOUR)
    model = HAN(config)
    assert model.fc_colour.in_features == 16 and model.fc_fusion.in_features == 3 * config.d_model
    data = TensorSplit(packed, torch.device("cpu"))
    before = model.fc_colour.weight.detach().clone()
    loss = train_step(model, make_optimizer(model, TrainConfig()), data.batch(torch.arange(2)), TrainConfig())
    assert np.isfinite(loss) and not torch.equal(before, model.fc_colour.weight)
    ckpt = save_checkpoint(tmp_path / "four.pt", model)
    model = load_model(ckpt)  # the checkpoint carries the feature list
    assert model.config.features == FOUR

    # The parser: offline (full windows) it gives HAN's own gated output on the clip, on
    # the torch engine and on ONNX Runtime's folded head with its row cache.
    clip = [np.array(x[0]) for x in packed.arrays.values()]
    with torch.no_grad():
        video, _, _, snippet = model(*(torch.from_numpy(x[None]) for x in clip))
    want = (snippet[0] * (video[0] >= 0.5)).numpy()
    from avvp_stream.backends.registry import create

    for engine in ("torch", "onnxruntime"):
        parser = OnlineParser(create(engine, model, torch.device("cpu")), CommitPolicy(10, 9, full_windows_only=True))
        for t in range(10):
            parser.insert_snippet(*(x[t] for x in clip))
        got = np.stack([r.prob for r in parser.finish() if r.final])
        np.testing.assert_allclose(got, want, atol=1e-5, err_msg=engine)


def test_the_folded_head_folds_every_stream(colour, loudness):
    """Several features per stream fold exactly: the visual stream's three and an audio
    stream of two (which gets its own fusion layer)."""
    from avvp_stream.head.folded import FoldedHead
    from avvp_stream.head.graph import head_inputs

    torch.manual_seed(1)
    features = ("audio", "loudness", *OFFICIAL[1:], "colour")
    model = HAN(HANConfig(features=features)).eval()
    assert model.fc_audio_fusion.in_features == 2 * model.config.d_model
    x = head_inputs(3, 7, seed=2, features=features)
    with torch.no_grad():
        video, _, _, snippet = model(*x)
        folded_video, folded_snippet = FoldedHead(model)(*x)
    torch.testing.assert_close(folded_video, video, atol=2e-6, rtol=0)
    torch.testing.assert_close(folded_snippet, snippet, atol=2e-6, rtol=0)


def test_a_feature_reads_its_own_frames_and_weight_files(colour, tmp_path):
    """Only the features asked for are built; a feature's weight files resolve (verified)
    like the official ones'; ``count`` picks that many frames spread over the second."""
    net = torch.nn.Linear(4 * 3 * 16, 16)
    torch.save(net.state_dict(), tmp_path / "colour_net.pt")
    data = (tmp_path / "colour_net.pt").read_bytes()
    files = {"colour_net": WeightFile("colour_net", "colour_net.pt", "http://127.0.0.1:9/colour_net.pt",
                                      sha256_prefix=hashlib.sha256(data).hexdigest()[:8])}
    fx = FeatureExtractor(device="cpu", features=("colour",), files=files,
                          weight_paths={"colour_net": tmp_path / "colour_net.pt"})
    assert list(fx.networks) == ["colour_net"] and fx.subsets["colour"].tolist() == [1, 3, 5, 7]
    frames = np.random.default_rng(0).integers(0, 255, (3, 8, 24, 32, 3), dtype=np.uint8)
    got = fx.snippets(np.zeros((3, 16000), np.float32), frames).colour
    with torch.no_grad():
        want = net(COLOUR.prepare(torch.from_numpy(frames[:, [1, 3, 5, 7]]))).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
