"""torch with captured CUDA graphs: the HAN head's ~100 small kernels replayed as one
graph per window shape (batch, time), into static buffers. Launch overhead is most of
the eager head's time on a GPU. The graph is of the folded head (``folded_head.py``)
when the architecture folds, with the fused pooling op when it is built."""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import torch

from .base import Backend, Engine

MAX_GRAPHS = 32  # window shapes kept captured (a stream uses one or two)


def evict_lru(graphs: OrderedDict, keep: int) -> None:
    """Drop the least recently used graphs until at most ``keep`` remain (their memory
    goes back to the pool)."""
    while len(graphs) > keep:
        graphs.popitem(last=False)


def capture(fn, static_in: list[torch.Tensor], stream: torch.cuda.Stream, pool=None):
    """``fn(*static_in)`` captured as a CUDA graph -> (graph, its outputs). It first runs
    twice on a side stream, as capture requires (and so that cuDNN makes its choices
    outside the graph)."""
    device = static_in[0].device
    with torch.inference_mode():
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            for _ in range(2):
                fn(*static_in)
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            outputs = fn(*static_in)
    return graph, outputs


class CudaGraphBackend(Backend):
    name = "cuda-graph"

    def __init__(self, model, device, workload=None):
        from avvp_stream.head import fused_pool as ops
        from avvp_stream.head.folded import FoldedHead, can_fold
        from avvp_stream.head.graph import HeadForExport

        self.device = torch.device(device)
        self.config = model.config
        fused = ops.load()
        model = copy.deepcopy(model).eval().to(self.device)  # the caller's model stays as it was
        if can_fold(model):
            self.head_module = FoldedHead(model, fused_pooling=fused).to(self.device)
        else:
            model.fused_pooling = fused
            self.head_module = HeadForExport(model)  # the two outputs the parser needs
        self._graphs: OrderedDict[tuple[int, int], tuple] = OrderedDict()  # least recently used first
        self._stream = torch.cuda.Stream(self.device)
        for shape in (workload.head_shapes() if workload else ()):  # warm-up: no capture in the live loop
            self._capture(*shape)

    def _capture(self, b: int, t: int):
        dims = [spec.dim for spec in self.config.inputs]
        static_in = [torch.zeros(b, t, d, device=self.device) for d in dims]
        graph, (video_prob, snippet_prob) = capture(self.head_module, static_in, self._stream)
        evict_lru(self._graphs, MAX_GRAPHS - 1)
        self._graphs[(b, t)] = (graph, static_in, video_prob, snippet_prob)
        return self._graphs[(b, t)]

    def head(self, *inputs, keys=None):
        b, t = inputs[0].shape[:2]
        entry = self._graphs.get((b, t))
        if entry is None:
            entry = self._capture(b, t)
        self._graphs.move_to_end((b, t))
        graph, static_in, video_prob, snippet_prob = entry
        for buf, x in zip(static_in, inputs):
            buf.copy_(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), non_blocking=False)
        graph.replay()
        return video_prob.float().cpu().numpy(), snippet_prob.float().cpu().numpy()


class CudaGraphExtractors:
    """The three feature networks replayed from CUDA graphs, one per (network, input
    shape): a batch of snippets then costs one launch per network instead of hundreds.
    The networks run as the extractor keeps them (ResNet and R(2+1)D in fp16 and channels
    last; VGGish in fp32, whose output is quantised to 8 bits and would flip bins in fp16).
    All graphs share one memory pool. That is safe because they replay one at a time on
    one stream and each output is copied out right after its replay, before another graph
    can reuse that memory."""

    def __init__(self, extractor, workload=None):
        self.device = extractor.device
        self.networks = extractor.networks
        self._graphs: OrderedDict[tuple, tuple] = OrderedDict()  # least recently used first
        self._pool = torch.cuda.graph_pool_handle()
        self._stream = torch.cuda.Stream(self.device)
        if workload is not None:  # warm-up: each network at the input sizes the run will send
            for spec in extractor.specs:
                for size in extractor.call_sizes(spec, workload.batch):
                    x = extractor.example(spec, size).to(self.device, extractor.input_dtype(spec))
                    self._capture(spec.network, x)

    def _capture(self, name: str, x: torch.Tensor):
        net, fmt = self.networks[name]
        static_in = torch.empty(x.shape, dtype=x.dtype, device=self.device).contiguous(memory_format=fmt)
        static_in.copy_(x)
        graph, static_out = capture(net, [static_in], self._stream, self._pool)
        evict_lru(self._graphs, 3 * MAX_GRAPHS - 1)
        self._graphs[(name, tuple(x.shape), x.dtype)] = (graph, static_in, static_out)
        return self._graphs[(name, tuple(x.shape), x.dtype)]

    @torch.inference_mode()
    def run(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """``x`` on the device, as the eager network takes it -> its output (a copy)."""
        x = x.to(self.device)
        key = (name, tuple(x.shape), x.dtype)
        entry = self._graphs.get(key) or self._capture(name, x)
        self._graphs.move_to_end(key)
        graph, static_in, static_out = entry
        static_in.copy_(x)
        graph.replay()
        return static_out.clone()


class CudaGraphEngine(Engine):
    """The folded head and the three feature networks replayed from CUDA graphs."""

    name = "cuda-graph"
    tolerance = 1e-3  # the head in fp32; cuBLAS may pick other kernels inside a graph
    networks_note = "feature networks replayed from CUDA graphs too"

    def unavailable(self, device_type: str) -> str | None:
        return None if device_type == "cuda" else "cuda-graph needs a CUDA GPU (use --device cuda)"

    def head(self, model, device, workload=None) -> Backend:
        return CudaGraphBackend(model, device, workload)

    def feature_networks(self, extractor, workload=None):
        return CudaGraphExtractors(extractor, workload) if extractor.device.type == "cuda" else None
