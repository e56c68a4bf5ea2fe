"""Feature extractors: the three per-snippet features HAN was trained on (VGGish audio,
ResNet-152 frames, R(2+1)D-18 clips), computed the way LLP's were."""
