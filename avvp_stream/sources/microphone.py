"""Microphone capture with sounddevice: a PortAudio callback stamps each block on the host
clock and hands it on; it never waits for anything downstream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import AvvpError
from ..features.timing import SAMPLE_RATE

BLOCK = 512  # 32 ms


def import_sounddevice():
    try:
        import sounddevice
    except ImportError:
        raise AvvpError("the microphone needs sounddevice: pip install 'avvp-stream[live]'") from None
    except OSError:  # sounddevice is installed but the PortAudio shared library is not
        raise AvvpError("the microphone needs the PortAudio library, which is missing "
                        "(Debian/Ubuntu: apt-get install libportaudio2; macOS: brew install portaudio)") from None
    return sounddevice


def _label(device: int | str | None) -> str:
    return "default microphone" if device is None else f"microphone {device!r}"


def check_microphone(device: int | str | None) -> str:
    """The input device's name, or one clear error (checked before models load)."""
    sd = import_sounddevice()
    try:
        return sd.query_devices(device, kind="input")["name"]
    except (ValueError, sd.PortAudioError):
        raise AvvpError(f"{_label(device)}: no such input device "
                        f"({_input_devices(sd) or 'the system lists no input device'})") from None


class MicrophoneCapture:
    """``on_audio(t_end, samples)`` for every block: ``samples`` (n,) float32 mono at the
    stream's rate, ``t_end`` the host time just after its last sample.

    ``stream_factory`` builds the input stream (default ``sounddevice.InputStream``); it
    is called with sounddevice's keyword arguments and must drive ``callback`` the way
    PortAudio does. Tests inject a stream that plays a known signal."""

    def __init__(self, clock: Callable[[], float], on_audio: Callable[[float, np.ndarray], None], *,
                 device: int | str | None = None, samplerate: int = SAMPLE_RATE, blocksize: int = BLOCK,
                 stream_factory: Callable[..., Any] | None = None):
        self.clock = clock
        self.on_audio = on_audio
        self.samplerate = samplerate
        self.overflows = 0  # blocks that PortAudio reported as overflowed (samples lost)
        self.name = _label(device)
        if stream_factory is None:
            sd = import_sounddevice()
            self.name = f"microphone {check_microphone(device)!r}"
            stream_factory = sd.InputStream
            errors: tuple[type[Exception], ...] = (sd.PortAudioError, ValueError)
        else:
            errors = (ValueError, RuntimeError, OSError)
        try:
            self.stream = stream_factory(samplerate=samplerate, channels=1, dtype="float32", blocksize=blocksize,
                                         device=device, callback=self._callback)
        except errors as exc:
            raise AvvpError(f"{self.name}: cannot open at {samplerate} Hz ({exc})") from None

    def _callback(self, indata, frames, time_info, status) -> None:
        now = self.clock()
        if status and getattr(status, "input_overflow", False):
            self.overflows += 1
        # PortAudio says how long ago the block's first sample hit the converter; without
        # that (some host APIs report 0) assume the block just filled.
        lag = float(getattr(time_info, "currentTime", 0.0)) - float(getattr(time_info, "inputBufferAdcTime", 0.0))
        duration = frames / self.samplerate
        if not 0.0 < lag < 1.0:
            lag = duration
        samples = np.asarray(indata, dtype=np.float32)
        mono = samples.mean(axis=1) if samples.ndim == 2 else samples
        self.on_audio(now - lag + duration, mono.copy())

    def start(self) -> None:
        self.stream.start()

    def stop(self) -> None:
        try:
            self.stream.stop()
            self.stream.close()
        except Exception:  # noqa: BLE001, S110 - a device that vanished cannot be stopped cleanly; nothing to save
            pass


def _input_devices(sd) -> str:
    try:
        devices = [d["name"] for d in sd.query_devices() if d["max_input_channels"] > 0]
    except Exception:  # noqa: BLE001
        return ""
    return "inputs: " + ", ".join(devices) if devices else ""
