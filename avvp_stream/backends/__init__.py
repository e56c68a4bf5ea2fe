"""Inference engines, behind one interface (``base.Engine``; the head they build is a
``base.Backend``), listed fastest first in ``registry``:

    torch        eager PyTorch on CPU or GPU: the reference (optionally the fused pooling op)
    onnxruntime  the exported ONNX head and feature networks on the CPU
    cuda-graph   torch with captured CUDA graphs per input shape (GPU only)
    tensorrt     TensorRT engines run with pycuda, without importing torch (GPU only)
"""

from .base import Backend, Engine, Verification
from .registry import BACKENDS, ENGINES, choose, create, get, pick_auto, register, unavailable_reason, unregister

__all__ = ["BACKENDS", "ENGINES", "Backend", "Engine", "Verification", "choose", "create", "get", "pick_auto",
           "register", "unavailable_reason", "unregister"]
