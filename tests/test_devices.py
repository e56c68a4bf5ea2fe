"""``--list-devices`` and device selection: what the listing shows is what --mic and
--camera select, by index and by part of the name.

Microphones are real PortAudio devices: ALSA's ``null`` plugin, declared in an
``.asoundrc`` under a temporary HOME (PortAudio reads the ALSA configuration when it
starts, so those runs are child processes). Cameras are listed where /dev/video* exists;
here there is none, and the listing says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from avvp_stream.errors import AvvpError
from avvp_stream.sources.devices import list_cameras, select

from test_stream import STREAM

ASOUNDRC = """
pcm.avvp_left { type null }
pcm.avvp_right { type null }
"""


def portaudio_home(tmp_path: Path) -> dict:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text(ASOUNDRC)
    return {**os.environ, "HOME": str(home)}


def needs_portaudio():
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError):
        pytest.skip("PortAudio (libportaudio2) is not installed")


def test_list_devices_says_what_this_machine_has():
    proc = subprocess.run([*STREAM, "--list-devices"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("Cameras") and "Microphones" in out
    cameras = out.split("Microphones")[0]
    if not list(Path("/dev").glob("video*")):
        assert "none found (no /dev/video* device)" in cameras
    mics = out.split("Microphones")[1]
    try:
        import sounddevice  # noqa: F401
        portaudio = True
    except OSError:
        portaudio = False
    if not portaudio:
        assert "cannot list: the microphone needs the PortAudio library" in mics
    else:
        assert "none found" in mics or "[" in mics


def test_microphones_are_selected_by_index_and_by_name_as_listed(tmp_path):
    """Two real (null) ALSA inputs: each selects by its listed index and by a part of its
    name, to the device PortAudio opens; an ambiguous part or an unknown one is one line
    naming the choices."""
    needs_portaudio()
    env = portaudio_home(tmp_path)
    listing = subprocess.run([*STREAM, "--list-devices"], capture_output=True, text=True, env=env, timeout=120)
    assert "avvp_left" in listing.stdout and "avvp_right" in listing.stdout, listing.stdout
    script = textwrap.dedent("""
        import json, time
        import sounddevice as sd
        from avvp_stream.errors import AvvpError
        from avvp_stream.sources.devices import list_microphones, resolve_microphone
        from avvp_stream.sources.microphone import MicrophoneCapture
        out = {"listed": [], "errors": []}
        for mic in list_microphones():
            if not mic.name.startswith("avvp_"):
                continue
            part = mic.name.split("_")[1][:4].upper()  # "LEFT", "RIGH": case does not matter
            by_index, by_name = resolve_microphone(str(mic.index)), resolve_microphone(part)
            blocks = []
            cap = MicrophoneCapture(time.monotonic, lambda t, x: blocks.append(len(x)), device=by_name)
            cap.start(); time.sleep(0.3); cap.stop()
            out["listed"].append([mic.index, mic.name, by_index, by_name, sd.query_devices(by_name)["name"],
                                  cap.name, sum(blocks) > 0])
        for spec in ("avvp", "nothing-like-it"):
            try:
                resolve_microphone(spec)
            except AvvpError as exc:
                out["errors"].append(str(exc))
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["listed"]) == 2
    for index, name, by_index, by_name, opened, cap_name, got_audio in out["listed"]:
        assert by_index == by_name == index and opened == name and name in cap_name and got_audio
        assert f"[{index}] {name}" in listing.stdout
    ambiguous, unknown = out["errors"]
    assert "matches 2 devices" in ambiguous and "avvp_left" in ambiguous and "avvp_right" in ambiguous
    assert "no such device" in unknown and "avvp_left" in unknown

    # the command line: one line, before any model loads
    proc = subprocess.run([*STREAM, "--source", "mic", "--mic", "avvp", "--random-weights"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "matches 2 devices" in proc.stderr.strip().splitlines()[-1]


def test_cameras_are_numbered_and_named_as_the_system_does(tmp_path):
    """The listing's numbering and names (device nodes and sysfs), without opening them;
    selection by index and by part of the name against it."""
    if not sys.platform.startswith("linux"):
        pytest.skip("device nodes are Linux's")
    dev, sysfs = tmp_path / "dev", tmp_path / "sys"
    for n, name in ((0, "Integrated Camera: Integrated C"), (2, "HD Pro Webcam C920"), (10, "OBS Virtual Camera")):
        (dev / f"video{n}").parent.mkdir(exist_ok=True)
        (dev / f"video{n}").touch()
        (sysfs / f"video{n}").mkdir(parents=True)
        (sysfs / f"video{n}" / "name").write_text(name + "\n")
    cameras = list_cameras(str(dev), str(sysfs), probe=False)
    assert [(c.index, c.name) for c in cameras] == [(0, "Integrated Camera: Integrated C"), (2, "HD Pro Webcam C920"),
                                                    (10, "OBS Virtual Camera")]
    assert select("2", cameras, "camera").index == 2 and select("c920", cameras, "camera").index == 2
    assert select("obs", cameras, "camera").index == 10
    with pytest.raises(AvvpError, match="matches 2 devices"):
        select("camera", cameras, "camera")  # Integrated Camera, OBS Virtual Camera
    with pytest.raises(AvvpError, match="no such device"):
        select("5", cameras, "camera")


def test_real_cameras_select_by_index_and_name():
    """Where this machine has cameras: each opens by its listed index and name part."""
    from avvp_stream.sources.devices import resolve_camera

    cameras = [c for c in list_cameras() if c.size is not None]
    if not cameras:
        pytest.skip("no camera on this machine (the listing says none)")
    for cam in cameras:
        assert resolve_camera(str(cam.index)) == cam.index
        unique = [w for w in cam.name.split() if sum(w.lower() in c.name.lower() for c in cameras) == 1]
        if unique:
            assert resolve_camera(unique[0]) == cam.index
