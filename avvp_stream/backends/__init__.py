"""Inference engines for the HAN head, behind one small interface (``base.Backend``):
the parser hands a batch of windows in and gets probabilities out, whatever runs them.

    torch        eager PyTorch on CPU or GPU: the reference (optionally the fused pooling op)
    onnxruntime  the exported ONNX head on the CPU
    cuda-graph   torch with one captured CUDA graph per window shape (GPU only)
    tensorrt     a TensorRT engine run with pycuda, without importing torch (GPU only)
"""

from .base import BACKENDS, Backend, create, unavailable_reason

__all__ = ["BACKENDS", "Backend", "create", "unavailable_reason"]
