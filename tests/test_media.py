"""Decoding media made with PyAV: layouts, rates, missing streams, lengths, damage."""

import re
import time

import numpy as np
import pytest

from avvp_stream.errors import AvvpError
from avvp_stream.features.timing import FfmpegRate, clip_picks, nearest_indices
from avvp_stream.sources.clip import decode_clip
from avvp_stream.sources.file import FileSource, frame_duration
from avvp_stream.sources.frames import MAX_SHORT_SIDE, reduced_size

from media import cut_short, level_at, make_media, make_rotated


def tone_peak_hz(audio, seconds=1):
    spectrum = np.abs(np.fft.rfft(audio[: 16000 * seconds]))
    return spectrum.argmax() / seconds


def frame_times(path, durations=False):
    import av

    with av.open(str(path)) as c:
        step = 1 / float(c.streams.video[0].guessed_rate)
        frames = [(f.time, frame_duration(f, step)) for f in c.decode(video=0)]
    times = np.array([t for t, _ in frames])
    return (times, np.array([d for _, d in frames])) if durations else times


def official_indices(times, durations, frames):
    """The decoded frames LLP's extraction would take: ffmpeg's 8 fps, then the even spread."""
    rate = FfmpegRate()
    outputs = [j for i, (t, d) in enumerate(zip(times, durations)) for j in rate.push(t, d, i)]
    return np.array(outputs)[clip_picks(len(outputs), frames)]


@pytest.mark.parametrize("vfr", [False, True])
def test_frames_are_picked_by_timestamp(tmp_path, vfr):
    """Files: the official rule (a clip processed whole); live's rule on request."""
    path = make_media(tmp_path / "v.mp4", 2.0, fps=25, vfr=vfr)
    times, durations = frame_times(path, durations=True)
    clip = decode_clip(path, seconds=2)
    expected = [level_at(times[i]) for i in official_indices(times, durations, 16)]
    np.testing.assert_allclose(clip.frames.reshape(16, -1).mean(1), expected, atol=1.5)  # H.264 keeps flat grey within a level
    nearest = np.concatenate([s.frames for s in FileSource(path, frame_rule="nearest")])
    expected = [level_at(times[i]) for i in nearest_indices(times, np.arange(16) / 8)]
    np.testing.assert_allclose(nearest.reshape(16, -1).mean(1), expected, atol=1.5)


def test_a_long_file_takes_ffmpegs_frames_second_by_second(tmp_path):
    """No spread over a file longer than the clip: snippet k gets the 8 fps outputs 8k..8k+7."""
    path = make_media(tmp_path / "long.mp4", 4.0, fps=30, audio=False)
    times, durations = frame_times(path, durations=True)
    rate = FfmpegRate()
    outputs = [j for i, (t, d) in enumerate(zip(times, durations)) for j in rate.push(t, d, i)]
    snippets = list(FileSource(path, clip=2))  # 4 s > 2 s: not a clip
    assert len(snippets) == 4
    got = np.concatenate([s.frames for s in snippets]).reshape(32, -1).mean(1)
    np.testing.assert_allclose(got, [level_at(times[i]) for i in outputs[:32]], atol=1.5)


def test_missing_streams_become_silence_or_black(tmp_path):
    clip = decode_clip(make_media(tmp_path / "silent.mkv", 2.0, audio=False, video_codec="mpeg4"), seconds=2)
    assert clip.notes == ["no audio stream: fed as silence"]
    assert not clip.audio.any() and clip.frames.shape[0] == 16
    clip = decode_clip(make_media(tmp_path / "sound.wav", 2.0, video=False, audio_codec="pcm_s16le", rate=22050), seconds=2)
    assert clip.notes == ["no video stream: fed as black frames"]
    assert not clip.frames.any() and tone_peak_hz(clip.audio) == pytest.approx(440, abs=2)


def test_short_clips_are_padded_and_long_ones_cut(tmp_path):
    short = decode_clip(make_media(tmp_path / "short.mp4", 3.0, size=(32, 32)), seconds=10)
    assert short.audio.shape == (160000,) and short.frames.shape == (80, 32, 32, 3)
    assert any("padded to 10 s" in n for n in short.notes)
    assert not short.audio[16000 * 4:].any()  # silence after the end
    np.testing.assert_array_equal(short.frames[-1], short.frames[30])  # last frame repeated
    long = decode_clip(make_media(tmp_path / "long.mp4", 12.0, size=(32, 32)), seconds=10)
    assert long.notes == ["12.00 s long: the first 10 s used"] and long.frames.shape == (80, 32, 32, 3)


def test_damaged_files_give_one_clear_error(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(AvvpError, match="junk.mp4: not a readable media file"):
        decode_clip(junk)
    good = make_media(tmp_path / "good.mp4", 3.0)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(AvvpError, match="cut.mp4"):
        decode_clip(cut)
    with pytest.raises(AvvpError, match="file not found"):
        decode_clip(tmp_path / "nope.mp4")


def test_real_llp_clip_decodes_to_ten_snippets(llp_dir):
    clip = decode_clip(llp_dir / "BjCEufrlXm4.mp4")
    assert clip.audio.shape == (160000,) and clip.frames.shape == (80, 240, 320, 3) and clip.notes == []
    assert clip.audio.std() > 0.01


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_display_matrix_rotation_is_applied(tmp_path, rotation):
    """A phone video stored sideways reaches the networks upright, from a file and from the
    same file played as a camera (OpenCV turns it; both agree with FFmpeg's own rule)."""
    path, upright = make_rotated(tmp_path / "phone.mp4", rotation)
    src = FileSource(path)
    frames = next(iter(src)).frames
    assert frames.shape[1:] == upright.shape, (frames.shape, upright.shape)
    assert np.abs(frames[0].astype(int) - upright).mean() < 8  # the white band is on top
    assert any("display matrix" in n for n in src.notes)
    pytest.importorskip("cv2")
    from avvp_stream.sources.camera import CameraCapture

    got = []
    cam = CameraCapture(str(path), clock=time.monotonic, on_frame=lambda t, rgb: got.append(rgb))
    cam.start()
    cam._thread.join(timeout=10)
    cam.stop()
    assert cam.ended and got and got[0].shape == upright.shape
    assert np.abs(got[0].astype(int) - upright).mean() < 8


def test_frames_are_reduced_as_decoded_above_480p_and_untouched_below(tmp_path):
    assert reduced_size(2160, 3840) == (480, 854) and reduced_size(1080, 1920) == (480, 854)
    assert reduced_size(1920, 1080) == (854, 480) and reduced_size(480, 640) == (480, 640)
    assert reduced_size(240, 320) == (240, 320)
    hd = next(iter(FileSource(make_media(tmp_path / "hd.mp4", 1.0, size=(1280, 720), audio=False))))
    assert hd.frames.shape == (8, MAX_SHORT_SIDE, 854, 3)
    import av

    path = make_media(tmp_path / "vga.mp4", 1.0, size=(640, 480), audio=False)
    with av.open(str(path)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24")
    np.testing.assert_array_equal(next(iter(FileSource(path))).frames[0], first)  # LLP sizes: exact


def test_media_cut_short_is_parsed_flushed_and_reported(tmp_path):
    """A download interrupted at 60%: the header says 10 s, 6 s decode. They are parsed
    and written, then one line says where it ended, exit 2."""
    import json
    import subprocess

    from conftest import console_script

    cut = cut_short(make_media(tmp_path / "full.mp4", 10.0, size=(64, 48)), tmp_path / "cut.mkv")
    src = FileSource(cut)
    ended = r"ended at [56]\.\d s of 10\.0 s declared \(file truncated\?\)"
    assert len(list(src)) == 6 and re.fullmatch(ended, src.stopped), src.stopped
    proc = subprocess.run([*console_script("avvp-stream"), str(cut), "--random-weights", "--backend", "torch",
                           "--resnet-frames", "1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert re.search(f"cut.mkv: stopped after 6 s: {ended}$", lines[-1]), proc.stderr
    snippets = [r for r in map(json.loads, proc.stdout.splitlines()) if r["kind"] == "snippet"]
    assert [r["index"] for r in snippets] == list(range(6)) and all(r["final"] for r in snippets)
    with pytest.raises(AvvpError, match=f"cut.mkv: {ended}"):
        decode_clip(cut)
    assert len(list(FileSource(cut, max_seconds=5))) == 5  # what was asked for is all there: no complaint
