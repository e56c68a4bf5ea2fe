"""HAN's head as the inference engines run it: the folded head (``folded``), its graph's
names and example inputs (``graph``), and the fused attentive-pooling op (``fused_pool``,
C++/CUDA sources in ``cpp_ext/csrc``)."""
