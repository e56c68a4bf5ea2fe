"""torch with captured CUDA graphs: the HAN head's ~100 small kernels replayed as one
graph per window shape (batch, time), into static buffers. Launch overhead is most of
the eager head's time on a GPU. The fused pooling op is used when it is built."""

from __future__ import annotations

import numpy as np
import torch

from .base import Backend

MAX_GRAPHS = 32  # window shapes kept captured (a stream uses one or two)


class CudaGraphBackend(Backend):
    name = "cuda-graph"

    def __init__(self, model, device):
        from avvp_stream.export import ops

        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.model.fused_pooling = ops.load()
        self._graphs: dict[tuple[int, int], tuple] = {}
        self._stream = torch.cuda.Stream(self.device)

    def _capture(self, b: int, t: int):
        dims = (self.model.config.audio_dim, self.model.config.video_2d_dim, self.model.config.video_3d_dim)
        static_in = [torch.zeros(b, t, d, device=self.device) for d in dims]
        with torch.inference_mode():
            self._stream.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self._stream):  # warm-up outside the graph, as capture requires
                for _ in range(2):
                    self.model(*static_in)
            torch.cuda.current_stream(self.device).wait_stream(self._stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                video_prob, _, _, snippet_prob = self.model(*static_in)
        if len(self._graphs) >= MAX_GRAPHS:
            self._graphs.pop(next(iter(self._graphs)))
        self._graphs[(b, t)] = (graph, static_in, video_prob, snippet_prob)
        return self._graphs[(b, t)]

    def head(self, audio, video_2d, video_3d):
        b, t = audio.shape[:2]
        graph, static_in, video_prob, snippet_prob = self._graphs.get((b, t)) or self._capture(b, t)
        for buf, x in zip(static_in, (audio, video_2d, video_3d)):
            buf.copy_(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), non_blocking=False)
        graph.replay()
        return video_prob.float().cpu().numpy(), snippet_prob.float().cpu().numpy()
