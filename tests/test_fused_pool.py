"""The fused attentive-pooling op (cpp_ext/): built once per session with the compilers of
this machine (the CUDA kernel is compiled and linked too when nvcc is present, so a
broken kernel never lands), checked against the torch reference, gradcheck, opcheck."""

import os

import pytest
import torch

from avvp_stream.head import fused_pool as ops
from avvp_stream.model import HAN


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    os.environ["AVVP_STREAM_HOME"] = str(tmp_path_factory.getbasetemp() / "avvp_home")
    with_cuda = ops.cuda_toolkit() is not None
    ops.build(with_cuda=with_cuda)
    return with_cuda


def inputs(n, t, d=512, c=25, dtype=torch.float32, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, t, 2, d, generator=g, dtype=torch.float64)
    w = torch.randn(3 * c, d, generator=g, dtype=torch.float64) * d ** -0.5
    b = torch.randn(3 * c, generator=g, dtype=torch.float64) * 0.5
    return [v.to(dtype=dtype, device=device) for v in (x, w, b)]


def test_cuda_kernel_compiled_and_linked(built):
    if ops.cuda_toolkit() is None:
        pytest.skip("no CUDA toolkit on this machine")
    assert built and ops._state["with_cuda"]
    assert torch.ops.avvp.attentive_pool.default  # the schema is registered


@pytest.mark.parametrize("n", [1, 7, 4096])
@pytest.mark.parametrize("t", [1, 2, 5, 10])
def test_forward_matches_reference_fp32(built, n, t):
    x, w, b = inputs(n, t, seed=n * 10 + t)
    got = torch.ops.avvp.attentive_pool(x, w, b)
    want = ops.reference(x, w, b)
    for g, r in zip(got[:4], want):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_on_the_cpu_op(built, dtype):
    """Half inputs, float math inside, half outputs: within 1e-3 of the float definition on
    the same (rounded) inputs (bfloat16's 8-bit mantissa: 1e-2)."""
    x, w, b = inputs(64, 10, dtype=dtype)
    want = ops.reference(x.float(), w.float(), b.float())
    tol = 1e-3 if dtype == torch.float16 else 1e-2
    for g, r in zip(torch.ops.avvp.attentive_pool(x, w, b)[:4], want):
        assert g.dtype == dtype
        torch.testing.assert_close(g.float(), r, atol=tol, rtol=tol)


def test_every_window_length(built):
    for t in range(1, 11):
        x, w, b = inputs(3, t, seed=t)
        for g, r in zip(torch.ops.avvp.attentive_pool(x, w, b)[:4], ops.reference(x, w, b)):
            torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5)


def test_gradcheck_in_double(built):
    x, w, b = inputs(2, 3, d=8, c=4, dtype=torch.float64)
    for v in (x, w, b):
        v.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda *a: torch.ops.avvp.attentive_pool(*a)[:4], (x, w, b))


def test_backward_matches_reference(built):
    x, w, b = inputs(16, 10)
    grads = []
    for fn in (lambda *a: torch.ops.avvp.attentive_pool(*a)[:4], ops.reference):
        leaves = [v.clone().requires_grad_(True) for v in (x, w, b)]
        video, audio, visual, frame = fn(*leaves)
        (video.sum() + 0.5 * audio.sum() - visual.square().sum() + frame.mean()).backward()
        grads.append([v.grad for v in leaves])
    for g, r in zip(*grads):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-4)


def test_opcheck(built):
    x, w, b = inputs(4, 6)
    torch.library.opcheck(torch.ops.avvp.attentive_pool.default, (x, w, b))
    x, w, b = inputs(2, 3, dtype=torch.float64)
    torch.library.opcheck(torch.ops.avvp.attentive_pool.default, (x.requires_grad_(), w.requires_grad_(), b))


def test_han_uses_it_and_gives_the_same_outputs(built):
    torch.manual_seed(0)
    model = HAN().eval()
    a, v2, v3 = torch.randn(2, 10, 128), torch.randn(2, 10, 2048), torch.randn(2, 10, 512)
    want = model(a, v2, v3)
    model.fused_pooling = True
    got = model(a, v2, v3)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5)


def test_folded_head_uses_it_and_gives_the_same_outputs(built):
    from avvp_stream.head.folded import FoldedHead

    torch.manual_seed(0)
    model = HAN().eval()
    a, v2, v3 = torch.randn(3, 10, 128), torch.randn(3, 10, 2048), torch.randn(3, 10, 512)
    with torch.inference_mode():
        video, _, _, snippet = model(a, v2, v3)
        got = FoldedHead(model, fused_pooling=True)(a, v2, v3)
    torch.testing.assert_close(got[0], video, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[1], snippet, atol=1e-5, rtol=1e-5)


def test_fallback_without_the_op_says_so_once(caplog, monkeypatch):
    monkeypatch.setattr(ops, "load", lambda build_if_missing=False: False)
    monkeypatch.setitem(ops._state, "noted", False)
    x, w, b = inputs(2, 4)
    with caplog.at_level("INFO"):
        first = ops.attentive_pool(x, w, b)
        ops.attentive_pool(x, w, b)
    assert sum("not built" in r.message for r in caplog.records) == 1
    for g, r in zip(first, ops.reference(x, w, b)):
        torch.testing.assert_close(g, r)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float16, 1e-3)])
@pytest.mark.parametrize("n", [1, 4096])
def test_cuda_forward_and_backward(built, dtype, tol, n):
    for t in (1, 10):
        x, w, b = inputs(n, t, dtype=dtype, device="cuda")
        ref = ops.reference(*(v.float() for v in (x, w, b)))
        for g, r in zip(torch.ops.avvp.attentive_pool(x, w, b)[:4], ref):
            torch.testing.assert_close(g.float(), r, atol=tol, rtol=tol)
    x, w, b = inputs(8, 10, device="cuda")
    cpu = [v.cpu().requires_grad_(True) for v in (x, w, b)]
    gpu = [v.clone().requires_grad_(True) for v in (x, w, b)]
    for leaves in (cpu, gpu):
        sum(o.sum() for o in torch.ops.avvp.attentive_pool(*leaves)[:4]).backward()
    for c, g in zip(cpu, gpu):
        torch.testing.assert_close(g.grad.cpu(), c.grad, atol=1e-4, rtol=1e-4)


def test_build_key_names_the_cuda_architectures(monkeypatch):
    """A library built for one GPU architecture is never taken for another's: the CUDA
    build's key carries TORCH_CUDA_ARCH_LIST (the CPU build's does not)."""
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "9.0")
    hopper, cpu = ops.build_key(True), ops.build_key(False)
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.0")
    assert ops.build_key(True) != hopper and ops.build_key(False) == cpu
    assert ops.cuda_archs() == "8.0"


def test_a_prebuilt_cuda_library_is_found_without_nvcc(monkeypatch, tmp_path):
    """Where nvcc is absent (a deployment image), a CUDA library already in the cache for
    these sources, this torch and this architecture is the one looked up."""
    if not torch.version.cuda:
        pytest.skip("a CPU-only torch cannot load a CUDA build")
    monkeypatch.setenv("AVVP_STREAM_HOME", str(tmp_path))
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "9.0")
    monkeypatch.setattr(ops, "cuda_toolkit", lambda: None)
    key = ops.build_key(True)
    lib = tmp_path / "ext" / key / f"avvp_pool_{key}.so"
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"")  # only its place is checked here; loading it needs the GPU
    assert ops._built_library() == (lib, True)
