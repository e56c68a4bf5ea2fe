"""``--list-devices``: the cameras and microphones this machine has, numbered the way
``--camera`` and ``--mic`` select them (by index, or by part of the name), and the one
function each option resolves through, so that what the listing shows is what selects.
"""

from __future__ import annotations

import glob
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import AvvpError

MAX_PROBED = 10  # camera indices tried where the system has no device files to list


@dataclass
class Camera:
    index: int
    path: str
    name: str
    size: tuple[int, int] | None  # (width, height) of a frame, when it could be opened
    note: str = ""

    def line(self) -> str:
        size = f"{self.size[0]}x{self.size[1]}" if self.size else "resolution unknown"
        note = f" ({self.note})" if self.note else ""
        return f"  [{self.index}] {self.name}  {self.path}  {size}{note}"


@dataclass
class Microphone:
    index: int
    name: str
    channels: int
    rate: float
    default: bool
    host_api: str = ""

    def line(self) -> str:
        mark = "  (default)" if self.default else ""
        api = f", {self.host_api}" if self.host_api else ""
        return f"  [{self.index}] {self.name}  {self.channels} ch, {self.rate:g} Hz{api}{mark}"


def _probe(cv2, spec) -> tuple[tuple[int, int] | None, str]:
    cap = cv2.VideoCapture(spec)
    try:
        if not cap.isOpened():
            return None, "cannot open: busy, or not a capture node"
        ok, frame = cap.read()
        if not ok:
            return None, "opens but delivers no frame"
        return (frame.shape[1], frame.shape[0]), ""
    finally:
        cap.release()


def list_cameras(dev_root: str = "/dev", sys_root: str = "/sys/class/video4linux", probe: bool = True) -> list[Camera]:
    """Video devices: on Linux the ``videoN`` nodes (name from sysfs), elsewhere the
    indices OpenCV can open. ``probe`` opens each to read one frame's size."""
    from .camera import import_cv2

    cv2 = import_cv2() if probe or not sys.platform.startswith("linux") else None
    cameras = []
    if sys.platform.startswith("linux"):
        nodes = sorted((int(re.sub(r"\D", "", Path(p).name) or 0), p) for p in glob.glob(f"{dev_root}/video*"))
        for index, node in nodes:
            name_file = Path(sys_root, Path(node).name, "name")
            name = name_file.read_text().strip() if name_file.is_file() else Path(node).name
            size, note = _probe(cv2, index) if probe else (None, "")
            cameras.append(Camera(index, node, name, size, note))
        return cameras
    for index in range(MAX_PROBED):
        size, _ = _probe(cv2, index)
        if size is not None:
            cameras.append(Camera(index, f"index {index}", f"camera {index}", size))
    return cameras


def list_microphones() -> list[Microphone]:
    """Input devices as PortAudio numbers them (``--mic`` takes the same numbers).
    Raises AvvpError, naming the fix, when sounddevice or PortAudio is missing."""
    from .microphone import import_sounddevice

    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        apis = [api["name"] for api in sd.query_hostapis()]
        default_in = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise AvvpError(f"PortAudio cannot list devices ({exc})") from None
    return [Microphone(d["index"], d["name"], d["max_input_channels"], d["default_samplerate"],
                       d["index"] == default_in, apis[d["hostapi"]] if d["hostapi"] < len(apis) else "")
            for d in devices if d["max_input_channels"] > 0]


def select(spec: str | int, devices: list, kind: str):
    """The device ``spec`` names in ``devices``: its index, or a part of exactly one
    device's name (case-insensitive). One clear error otherwise, listing the choices."""
    if not devices:
        raise AvvpError(f"{kind} {spec!r}: this machine has none (avvp-stream --list-devices)")
    choices = "; ".join(f"[{d.index}] {d.name}" for d in devices)
    if isinstance(spec, int) or str(spec).isdigit():
        found = [d for d in devices if d.index == int(spec)]
    else:
        found = [d for d in devices if str(spec).lower() in d.name.lower()]
        exact = [d for d in found if d.name.lower() == str(spec).lower()]
        found = exact or found
    if len(found) == 1:
        return found[0]
    if not found:
        raise AvvpError(f"{kind} {spec!r}: no such device (choose one of: {choices})")
    raise AvvpError(f"{kind} {spec!r}: matches {len(found)} devices; give its index or more of the name "
                    f"({'; '.join(f'[{d.index}] {d.name}' for d in found)})")


def listing() -> list[str]:
    """The lines ``--list-devices`` prints: both kinds, each with a clear line when there
    are none or the library behind it is missing."""
    lines = ["Cameras (--camera INDEX or part of the name; a device path, stream URL or video file also works):"]
    try:
        cameras = list_cameras()
        lines += [c.line() for c in cameras] or ["  none found" + (" (no /dev/video* device)" if sys.platform.startswith("linux") else "")]
    except AvvpError as exc:
        lines.append(f"  cannot list: {exc}")
    lines.append("Microphones (--mic INDEX or part of the name; default: the one marked):")
    try:
        mics = list_microphones()
        lines += [m.line() for m in mics] or ["  none found (PortAudio lists no input device)"]
    except AvvpError as exc:
        lines.append(f"  cannot list: {exc}")
    return lines


def resolve_microphone(spec: str | None) -> int | None:
    """``--mic``: None for the system's default input, else the PortAudio index of the
    device the listing shows for ``spec``."""
    if spec is None or spec in ("", "default"):
        return None
    return select(spec, list_microphones(), "microphone").index


def resolve_camera(spec: str) -> int | str:
    """``--camera``: an index, a device path, a stream URL or a video file as given; any
    other text is part of a camera's name in the listing."""
    if spec.isdigit():
        return int(spec)
    if "://" in spec or Path(spec).exists():
        return spec
    return select(spec, list_cameras(probe=False), "camera").index
