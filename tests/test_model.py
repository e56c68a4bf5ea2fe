import logging

import pytest
import torch

from avvp_stream import load_model
from avvp_stream.checkpoint import from_official_state_dict, save_checkpoint
from avvp_stream.errors import AvvpError
from avvp_stream.model import HAN, HANConfig, POOLINGS, TEMPORAL_MODELS, mmil_pool

from conftest import shared_file

OUTPUT_NAMES = ("global_prob", "a_prob", "v_prob", "frame_prob")


@pytest.fixture(scope="module")
def golden():
    return torch.load(shared_file("reference", "han_golden.pt"), weights_only=True)


def test_official_checkpoint_reproduces_golden_outputs(golden, tmp_path, caplog):
    path = tmp_path / "MMIL_Net.pt"
    torch.save(golden["state_dict"], path)  # the official file is a bare state dict
    with caplog.at_level(logging.INFO):
        model = load_model(path)
    assert not model.training
    assert "ignoring" in caplog.text and "cmt_encoder" in caplog.text
    inputs = golden["inputs"]
    with torch.no_grad():
        outputs = model(inputs["audio"], inputs["video_s"], inputs["video_st"])
    for name, out in zip(OUTPUT_NAMES, outputs):
        expected = golden["outputs"][name]
        assert out.shape == expected.shape
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_official_key_layout_is_complete(golden):
    """Every key HAN uses exists in the official layout and vice versa (besides the
    official file's unused modules)."""
    kept, ignored = from_official_state_dict(golden["state_dict"])
    assert set(kept) == set(HAN().state_dict())
    assert ignored and all(k.split(".")[0] in ("audio_encoder", "visual_encoder", "cmt_encoder") for k in ignored)
    tsv = shared_file("reference", "mmil_net_state_dict.tsv").read_text().splitlines()[1:]
    assert {line.split("\t")[0] for line in tsv} == set(golden["state_dict"])


def test_prepooled_frames_equal_official_frame_wise_fc_v():
    """Averaging the 8 frames before fc_v equals fc_v on every frame then averaging."""
    torch.manual_seed(0)
    model = HAN().eval()
    audio, frames, clips = torch.randn(2, 10, 128), torch.rand(2, 80, 2048), torch.randn(2, 10, 512)
    frame_wise = model.fc_v(frames).reshape(2, 10, 8, 512).mean(2)
    pooled_first = model.fc_v(frames.reshape(2, 10, 8, 2048).mean(2))
    torch.testing.assert_close(pooled_first, frame_wise, atol=1e-5, rtol=0)
    with torch.no_grad():
        full = model(audio, frames, clips)
        pre = model(audio, frames.reshape(2, 10, 8, 2048).mean(2), clips)
    for a, b in zip(full, pre):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("temporal", TEMPORAL_MODELS)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_every_variant_has_official_output_shapes(temporal, pooling):
    model = HAN(HANConfig(temporal=temporal, pooling=pooling)).eval()
    for t in (1, 4, 10):
        with torch.no_grad():
            video, audio, visual, snippet = model(torch.randn(3, t, 128), torch.randn(3, 8 * t, 2048), torch.randn(3, t, 512))
        assert video.shape == audio.shape == visual.shape == (3, 25)
        assert snippet.shape == (3, t, 2, 25)
        assert ((video >= 0) & (video <= 1 + 1e-6)).all()


def test_mismatched_inputs_are_rejected():
    model = HAN().eval()
    with pytest.raises(ValueError, match="frames"):
        model(torch.randn(1, 10, 128), torch.randn(1, 30, 2048), torch.randn(1, 10, 512))


def test_modality_dropout_pools_only_the_kept_modality():
    torch.manual_seed(0)
    frame_prob = torch.rand(2, 10, 2, 25)
    att, av = torch.randn(2, 10, 2, 25), torch.randn(2, 10, 2, 25)
    keep = torch.tensor([[True, False], [False, True]])
    video, a, v = mmil_pool(frame_prob, att, av, "attentive", keep)
    torch.testing.assert_close(video[0], a[0])
    torch.testing.assert_close(video[1], v[1])
    model = HAN(HANConfig(modality_dropout=0.5)).train()
    out = model(torch.randn(8, 10, 128), torch.randn(8, 10, 2048), torch.randn(8, 10, 512))
    out[0].sum().backward()


def test_our_checkpoint_round_trip_carries_config(tmp_path):
    torch.manual_seed(1)
    model = HAN(HANConfig(temporal="gru", pooling="mean")).eval()
    path = save_checkpoint(tmp_path / "ck.pt", model, epoch=3)
    loaded = load_model(path)
    assert loaded.config == model.config
    x = (torch.randn(1, 10, 128), torch.randn(1, 10, 2048), torch.randn(1, 10, 512))
    with torch.no_grad():
        torch.testing.assert_close(loaded(*x)[3], model(*x)[3])


class Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoints_never_unpickle_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "x", "payload": Payload()}, path)
    with pytest.raises(AvvpError, match="not a readable checkpoint"):
        load_model(path)


def test_bad_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(AvvpError, match="checkpoint not found"):
        load_model(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(AvvpError, match="not a readable checkpoint"):
        load_model(junk)
    state = HAN().state_dict()
    state["fc_a.weight"] = torch.zeros(512, 64)
    bad = tmp_path / "bad_shape.pt"
    torch.save(state, bad)
    with pytest.raises(AvvpError, match="wrong shape for fc_a.weight"):
        load_model(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(AvvpError, match="not an avvp-stream or official"):
        load_model(other)


def test_official_baseline_of_the_benchmarks_reproduces_golden_outputs(golden):
    """benchmarks/official_han.py (the official MMIL_Net, nn.MultiheadAttention in the
    official module layout) is the official computation: it loads the official checkpoint
    strictly and gives the golden outputs. The benchmarks' "official" rows run it."""
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "benchmarks"))
    from official_han import MMIL_Net, official_like

    net = MMIL_Net().eval()
    net.load_state_dict(golden["state_dict"], strict=True)
    attention = [m for m in net.hat_encoder.modules() if isinstance(m, torch.nn.MultiheadAttention)]
    assert len(attention) == 2
    inputs = golden["inputs"]
    with torch.no_grad():
        outputs = net(inputs["audio"], inputs["video_s"], inputs["video_st"])
        ours = official_like(load_model_from_state(golden["state_dict"]))(inputs["audio"], inputs["video_s"], inputs["video_st"])
    for name, out, again in zip(OUTPUT_NAMES, outputs, ours):
        torch.testing.assert_close(out, golden["outputs"][name], atol=1e-5, rtol=0)
        torch.testing.assert_close(again, golden["outputs"][name], atol=1e-5, rtol=0)


def load_model_from_state(state_dict) -> HAN:
    kept, _ = from_official_state_dict(state_dict)
    model = HAN().eval()
    model.load_state_dict(kept)
    return model
