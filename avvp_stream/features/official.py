"""The three features HAN was trained on, registered: VGGish audio, ResNet-152 frames and
R(2+1)D-18 clips, each computed as LLP's release computed it."""

from . import spec, vggish, visual

for _spec in (vggish.SPEC, visual.VIDEO_2D, visual.VIDEO_3D):
    spec.register(_spec)
