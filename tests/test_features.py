"""Feature extraction with randomly initialised networks (no weight file is needed)."""

import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from avvp_stream.features.extractor import FeatureExtractor
from avvp_stream.train.feature_store import folder_shapes, load_video

from conftest import console_script
from media import cut_short, make_media

TRAIN = console_script("avvp-train")


@pytest.fixture(scope="module")
def extractor():
    return FeatureExtractor(device="cpu", random_weights=True, seed=0)


def test_snippet_features_shapes_determinism_and_batch_invariance(extractor):
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((2, 16000)).astype(np.float32) * 0.1
    frames = rng.integers(0, 256, (2, 8, 40, 60, 3), dtype=np.uint8)
    both = extractor.snippets(audio, frames)
    assert both.audio.shape == (2, 128) and both.video_2d.shape == (2, 8, 2048) and both.video_3d.shape == (2, 512)
    assert both.audio.dtype == both.video_2d.dtype == both.video_3d.dtype == np.float32
    alone = extractor.snippets(audio[1:], frames[1:])
    np.testing.assert_allclose(alone.audio, both.audio[1:], atol=1e-4)
    np.testing.assert_allclose(alone.video_2d, both.video_2d[1:], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(alone.video_3d, both.video_3d[1:], rtol=1e-4, atol=1e-4)
    again = extractor.snippets(audio, frames)
    np.testing.assert_array_equal(again.video_3d, both.video_3d)


def test_random_weights_are_seeded():
    a = FeatureExtractor(device="cpu", random_weights=True, seed=7)
    b = FeatureExtractor(device="cpu", random_weights=True, seed=7)
    for x, y in zip(a.nets["r2plus1d_18"].state_dict().values(), b.nets["r2plus1d_18"].state_dict().values()):
        assert torch.equal(x, y)


def run(*args, env=None):
    return subprocess.run([*TRAIN, *map(str, args)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_extract_folder_is_resumable_and_reports_failures(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    make_media(videos / "good.mp4", 2.0, size=(48, 32))
    make_media(videos / "silent.mkv", 2.0, audio=False, video_codec="mpeg4", size=(48, 32))
    (videos / "junk.mp4").write_bytes(b"\x00not a video" * 100)
    (videos / "notes.txt").write_text("not media, ignored")
    out = tmp_path / "feats"
    proc = run("extract", videos, out, "--seconds", "2", "--random-weights", "--device", "cpu")
    assert proc.returncode == 1, proc.stderr
    assert "random-weights" in proc.stderr and "silent.mkv: no audio stream" in proc.stderr
    assert "failed junk.mp4" in proc.stderr and "extracted 2, already done 0, failed 1" in proc.stderr
    assert "Traceback" not in proc.stderr
    for name in ("good", "silent"):
        assert np.load(out / "vggish" / f"{name}.npy").shape == (2, 128)
        assert np.load(out / "res152" / f"{name}.npy").shape == (16, 2048)
        assert np.load(out / "r2plus1d_18" / f"{name}.npy").shape == (2, 512)
    assert not any(p.name.startswith(".") for kind in folder_shapes() for p in (out / kind).iterdir())
    (videos / "junk.mp4").unlink()
    proc = run("extract", videos, out, "--seconds", "2", "--random-weights", "--device", "cpu")
    assert proc.returncode == 0 and "extracted 0, already done 2, failed 0" in proc.stderr


def test_offline_without_weights_lists_every_file(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    make_media(videos / "a.mp4", 1.0, size=(32, 32))
    proc = run("extract", videos, tmp_path / "out", "--device", "cpu", env={"AVVP_STREAM_OFFLINE": "1"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    for fragment in ("vggish-10086976.pth", "vggish_pca_params", "resnet152-", "r2plus1d_18-", "weights"):
        assert fragment in line


@pytest.mark.slow
def test_real_llp_clip_extracts_to_llp_shapes(llp_dir, tmp_path, extractor):
    """The real clip through extract_folder (the command's own loop; the command itself is
    run in the tests above) in LLP's folder layout and shapes."""
    from avvp_stream.train.extract import extract_folder

    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(llp_dir / "BjCEufrlXm4.mp4", videos)
    summary = extract_folder(videos, tmp_path / "feats", extractor, log=lambda msg: None)
    assert summary.done == ["BjCEufrlXm4.mp4"] and not summary.failed
    audio, res152, r2p1d = load_video(tmp_path / "feats", "BjCEufrlXm4_20_30")  # LLP shape checks
    assert audio.shape == (10, 128) and res152.shape == (80, 2048) and r2p1d.shape == (10, 512)


def test_fast_profile_runs_fewer_resnet_frames(extractor):
    from avvp_stream.features.extractor import frame_subset

    assert frame_subset(8).tolist() == list(range(8))
    assert frame_subset(2).tolist() == [2, 6] and frame_subset(1).tolist() == [4]
    fast = FeatureExtractor(device="cpu", random_weights=True, seed=0, resnet_frames=2)
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (1, 8, 32, 32, 3), dtype=np.uint8)
    audio = np.zeros((1, 16000), np.float32)
    f = fast.snippets(audio, frames)
    full = extractor.snippets(audio, frames)
    assert f.video_2d.shape == (1, 2, 2048) and f.pooled_2d().shape == (1, 2048)
    np.testing.assert_allclose(f.video_2d[0], full.video_2d[0, [2, 6]], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(f.video_3d, full.video_3d, rtol=1e-5, atol=1e-5)


def test_clips_of_different_sizes_batch_like_alone(extractor):
    rng = np.random.default_rng(2)
    a = (rng.standard_normal(16000).astype(np.float32), rng.integers(0, 256, (8, 24, 40, 3), dtype=np.uint8))
    b = (rng.standard_normal(32000).astype(np.float32), rng.integers(0, 256, (16, 36, 20, 3), dtype=np.uint8))
    together = extractor.clips([a, b])
    alone = extractor.clip(*b)
    assert [f.audio.shape[0] for f in together] == [1, 2]
    np.testing.assert_allclose(together[1].video_2d, alone.video_2d, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(together[1].video_3d, alone.video_3d, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(together[1].audio, alone.audio, atol=1e-4)


def test_torchvision_state_dicts_load_into_the_feature_nets():
    from torchvision.models.video import r2plus1d_18

    from avvp_stream.features import visual

    torch.manual_seed(3)
    source = r2plus1d_18().eval()  # the layout torchvision's KINETICS400_V1 file has
    net = visual.r2plus1d_18(source.state_dict()).eval()
    x = torch.randn(1, 3, 8, 112, 112)
    with torch.no_grad():
        source.fc = torch.nn.Identity()
        torch.testing.assert_close(net(x), source(x))


class FailsOnSecondBatch:
    """The extractor, except that its second batch meets a failure that is no file's fault."""

    def __init__(self, inner, error: BaseException):
        self.inner, self.error, self.calls = inner, error, 0
        self.specs = inner.specs

    def clips(self, items):
        self.calls += 1
        if self.calls == 2:
            raise self.error
        return self.inner.clips(items)


def test_extract_failure_policy_bad_files_go_on_our_failures_stop(tmp_path, extractor):
    """A file cut short is reported with its reason and the batch goes on; a CUDA error (or
    out of memory, or a bug) stops the run with one line, keeping what was written."""
    from avvp_stream.errors import AvvpError
    from avvp_stream.train.extract import extract_folder

    videos, out, log = tmp_path / "videos", tmp_path / "feats", []
    videos.mkdir()
    for name in ("a_good", "c_good", "d_good"):
        make_media(videos / f"{name}.mp4", 4.0, size=(48, 32))
    cut_short(make_media(tmp_path / "b.mp4", 4.0, size=(48, 32)), videos / "b_cut.mkv", 0.5)
    failing = FailsOnSecondBatch(extractor, RuntimeError("CUDA error: an illegal memory access was encountered\nmore"))
    with pytest.raises(AvvpError) as info:
        extract_folder(videos, out, failing, seconds=4, batch=1, log=log.append)
    message = str(info.value)
    assert "\n" not in message and message.startswith("extraction stopped by RuntimeError: CUDA error: an illegal")
    assert "1 videos written; 1 bad files" in message
    assert (out / "vggish" / "a_good.npy").is_file() and not (out / "vggish" / "c_good.npy").exists()
    assert any(line.startswith("failed: ") and "b_cut.mkv: ended at" in line for line in log)
    summary = extract_folder(videos, out, extractor, seconds=4, batch=1, log=log.append)  # a rerun resumes
    assert summary.skipped == ["a_good.mp4"] and summary.done == ["c_good.mp4", "d_good.mp4"]
    assert list(summary.failed) == ["b_cut.mkv"] and "(file truncated?)" in summary.failed["b_cut.mkv"]
