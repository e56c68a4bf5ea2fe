"""C++ and CUDA sources of the fused attentive-pooling op, installed as package data
(``avvp_stream.head.fused_pool`` builds and loads them)."""
