"""Where snippets come from: media files (PyAV), cameras (OpenCV) and microphones
(sounddevice), each handing on 1 s snippets of 16 kHz audio and 8 upright frames."""
