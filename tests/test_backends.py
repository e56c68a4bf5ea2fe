"""Backends behind one interface: ONNX Runtime against the torch reference, the parser on
either, the auto choice and missing-backend messages, the TensorRT engine cache (its keys
and staleness; the TensorRT calls themselves skip without TensorRT), and avvp-export."""

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from avvp_stream.backends import create
from avvp_stream.backends import pick_auto
from avvp_stream.backends.base import Workload
from avvp_stream.errors import AvvpError
from avvp_stream.model import HAN
from avvp_stream.parser import CommitPolicy, OnlineParser

from conftest import console_script

EXPORT = console_script("avvp-export")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HAN().eval()


def head_inputs(b, t, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((b, t, d)).astype(np.float32) for d in (128, 2048, 512)]


def test_onnxruntime_head_matches_torch(model):
    ort_backend = create("onnxruntime", model, "cpu")
    reference = create("torch", model, "cpu")
    for b, t in [(1, 10), (1, 1), (4, 7), (2, 12)]:
        x = head_inputs(b, t, seed=b * 10 + t)
        for got, want in zip(ort_backend.head(*x), reference.head(*x)):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("policy", [CommitPolicy(10, 0), CommitPolicy(10, 9, full_windows_only=True)])
def test_parser_gives_the_same_labels_on_either_backend(model, policy):
    rng = np.random.default_rng(1)
    feats = [(rng.standard_normal(128), rng.standard_normal(2048), rng.standard_normal(512)) for _ in range(14)]
    runs = []
    for backend in (create("torch", model, "cpu"), create("onnxruntime", model, "cpu")):
        parser = OnlineParser(backend, policy)
        out = []
        for f in feats:
            parser.insert_snippet(*f)
            out += parser.process()
        out += parser.finish()
        runs.append([(r.index, r.final, r.prob) for r in out])
    assert [r[:2] for r in runs[0]] == [r[:2] for r in runs[1]]
    np.testing.assert_allclose(np.stack([r[2] for r in runs[0]]), np.stack([r[2] for r in runs[1]]), atol=1e-4)


def test_auto_and_unavailable_backends(model):
    assert pick_auto("cpu") == "onnxruntime"  # installed with the dev extra, and faster on the CPU
    assert create("auto", model, "cpu").name == "onnxruntime"
    with pytest.raises(AvvpError, match="cuda-graph needs a CUDA GPU"):
        create("cuda-graph", model, "cpu")
    with pytest.raises(AvvpError, match="tensorrt needs a CUDA GPU"):
        create("tensorrt", model, "cpu")


def test_tensorrt_path_does_not_import_torch():
    code = ("import sys, avvp_stream.backends.tensorrt_backend, avvp_stream.backends.tensorrt_build; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_engine_cache_keys_and_staleness(tmp_path):
    from avvp_stream.backends import tensorrt_build as te

    onnx = tmp_path / "head.onnx"
    onnx.write_bytes(b"model-a")
    key = te.make_key(onnx, "NVIDIA H100 80GB HBM3", "9.0", "10.13.0", "fp32")
    variants = [te.make_key(onnx, "NVIDIA L4", "8.9", "10.13.0", "fp32"),
                te.make_key(onnx, "NVIDIA H100 80GB HBM3", "9.0", "11.0.0", "fp32"),
                te.make_key(onnx, "NVIDIA H100 80GB HBM3", "9.0", "10.13.0", "fp16"),
                te.make_key(onnx, "NVIDIA H100 80GB HBM3", "9.0", "10.13.0", "fp32", {"batch": (1, 1, 8), "time": (1, 10, 10)})]
    assert len({key.digest, *(v.digest for v in variants)}) == 5
    engine, meta = te.engine_paths(tmp_path, key, "han_head")
    assert not te.is_fresh(engine, meta, key)
    te.write_engine(engine, meta, key, b"serialized engine")
    assert te.is_fresh(engine, meta, key) and json.loads(meta.read_text())["tensorrt"] == "10.13.0"
    stale = json.loads(meta.read_text())
    stale["tensorrt"] = "10.0.1"  # an engine from another TensorRT must be rebuilt, never loaded
    meta.write_text(json.dumps(stale))
    assert not te.is_fresh(engine, meta, key)
    onnx.write_bytes(b"model-b")  # a re-exported model changes the key itself
    assert te.make_key(onnx, "NVIDIA H100 80GB HBM3", "9.0", "10.13.0", "fp32").digest != key.digest


def test_engine_profiles_cover_the_dynamic_axes(tmp_path):
    from avvp_stream.backends import tensorrt_build as te

    onnx_file = tmp_path / "head.onnx"
    onnx_file.write_bytes(b"model")

    assert te.profile_shapes((-1, -1, 128), te.HEAD_PROFILE) == ((1, 1, 128), (1, 10, 128), (64, 64, 128))
    assert te.profile_shapes((-1, 3, 224, 224), te.EXTRACTOR_PROFILE) == (
        (1, 3, 224, 224), (8, 3, 224, 224), (64, 3, 224, 224))
    with pytest.raises(ValueError, match="does not cover"):
        te.profile_shapes((-1, -1, 128), te.EXTRACTOR_PROFILE)
    # tuned for what the run sends: a file's 8 windows, ResNet's 64 frames per call
    assert te.profile_shapes((-1, -1, 128), te.head_profile(8, 10))[1] == (8, 10, 128)
    assert te.profile_shapes((-1, 3, 224, 224), te.extractor_profile(64))[1] == (64, 3, 224, 224)
    live, offline = (te.make_key(onnx_file, "GPU", "9.0", "10.13.0", "fp32", te.head_profile(b, 10)) for b in (1, 8))
    assert live.digest != offline.digest  # two engines, each tuned for its own run


@pytest.mark.gpu
def test_tensorrt_engine_matches_torch(model):
    pytest.importorskip("tensorrt")
    pytest.importorskip("pycuda")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    trt_backend, reference = create("tensorrt", model, "cuda"), create("torch", model, "cuda")
    x = head_inputs(1, 10, seed=0)
    for got, want in zip(trt_backend.head(*x), reference.head(*x)):
        np.testing.assert_allclose(got, want, atol=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_head_matches_torch(model):
    graphs = create("cuda-graph", copy.deepcopy(model), "cuda")
    reference = create("torch", copy.deepcopy(model), "cuda")
    for b, t, seed in [(1, 10, 0), (4, 7, 1), (1, 10, 2)]:  # the last replays the first graph on new inputs
        x = head_inputs(b, t, seed)
        for got, want in zip(graphs.head(*x), reference.head(*x)):
            np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_extractors_match_eager():
    from avvp_stream.features.extractor import FeatureExtractor

    fx = FeatureExtractor(device="cuda", random_weights=True)
    rng = np.random.default_rng(0)
    batches = [(rng.uniform(-0.5, 0.5, (n, 16000)).astype(np.float32),
                rng.integers(0, 256, (n, 8, 120, 160, 3), dtype=np.uint8)) for n in (3, 3, 2)]
    eager = [fx.snippets(*batch) for batch in batches]
    from avvp_stream.backends.cuda_graph import CudaGraphExtractors

    fx.use_networks(CudaGraphExtractors(fx))
    for batch, want in zip(batches, eager):  # a second batch of 3 replays the captured graphs
        got = fx.snippets(*batch)
        assert np.mean(np.abs(got.audio - want.audio) > 1) == 0  # VGGish stays fp32: at most one 8-bit bin apart
        for g, w in ((got.video_2d, want.video_2d), (got.video_3d, want.video_3d)):
            assert np.abs(g - w).max() <= 1e-2 * max(1.0, np.abs(w).max())


def test_avvp_export_onnx_checks_every_file(tmp_path):
    proc = subprocess.run([*EXPORT, "onnx", str(tmp_path / "out"), "--random-weights", "--fp16-head"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    files = manifest["files"]
    assert set(files) == {"han_head.onnx", "han_head_streaming.onnx", "han_head_fp16.onnx", "vggish.onnx",
                          "resnet152.onnx", "r2plus1d_18.onnx"}
    assert files["han_head.onnx"]["max_abs_diff"] < 1e-4 and files["han_head_streaming.onnx"]["max_abs_diff"] < 1e-4
    for name in ("vggish.onnx", "resnet152.onnx", "r2plus1d_18.onnx"):
        assert files[name]["max_abs_diff"] / files[name]["output_scale"] < 1e-4, (name, files[name])
    import onnx

    head = onnx.load(str(tmp_path / "out" / "han_head.onnx"))
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in head.graph.input]
    assert dims == [["batch", "time", 128], ["batch", "time", 2048], ["batch", "time", 512]]


def test_avvp_export_build_ext_and_bad_input(tmp_path):
    proc = subprocess.run([*EXPORT, "tensorrt", str(tmp_path / "missing.onnx")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "file not found" in proc.stderr
    (tmp_path / "han_head_streaming.onnx").write_bytes(b"onnx")
    proc = subprocess.run([*EXPORT, "tensorrt", str(tmp_path / "han_head_streaming.onnx")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "row-cache graph for ONNX Runtime" in proc.stderr
    from avvp_stream.head import fused_pool as ops

    cuda = ops.cuda_toolkit() is not None  # as the session's build (tests/test_fused_pool.py): found in the cache
    proc = subprocess.run([*EXPORT, "build-ext", "--cuda" if cuda else "--no-cuda"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"built the fused pooling op ({'CPU + CUDA' if cuda else 'CPU'})" in proc.stderr


class Float64Engine:
    """A test-only engine, registered at run time: the head in float64 torch on the CPU.
    It counts its calls, to show that the parser and the CLI's pipeline went through it."""

    def __new__(cls):
        from avvp_stream.backends import Backend, Engine

        class Head(Backend):
            name = "float64-test"

            def __init__(self, model, engine):
                self.model, self.engine = copy.deepcopy(model).double().cpu().eval(), engine

            def head(self, *inputs, keys=None):
                self.engine.calls += 1
                with torch.no_grad():
                    video, _, _, snippet = self.model(*(torch.from_numpy(np.asarray(x, np.float64)) for x in inputs))
                return video.float().numpy(), snippet.float().numpy()

        class _Float64(Engine):
            name = "float64-test"
            tolerance = 1e-5
            calls = 0
            workloads: list = []

            def head(self, model, device, workload=None):
                self.workloads.append(workload)
                return Head(model, self)

        return _Float64()


def test_a_new_engine_is_one_registration(model, tmp_path, capsys):
    """An engine of the test's own plugs in with one ``register`` call: create, the parser,
    verification and the CLI's pipeline (RunConfig) all reach it by name."""
    from avvp_stream.backends import ENGINES, choose, register, unregister
    from avvp_stream.runner import RunConfig, run

    from media import make_media

    engine = Float64Engine()
    register(engine)
    try:
        assert "float64-test" in ENGINES and choose("float64-test", "cpu") is engine
        assert choose("auto", "cpu").name == "onnxruntime"  # registered last: not auto's pick
        rng = np.random.default_rng(0)
        feats = [rng.standard_normal((12, d)).astype(np.float32) for d in (128, 2048, 512)]
        got, want = [], []
        for backend, out in ((create("float64-test", model, "cpu"), got), (create("torch", model, "cpu"), want)):
            parser = OnlineParser(backend, CommitPolicy(10, 0))
            for i in range(12):
                parser.insert_snippet(feats[0][i], feats[1][i], feats[2][i])
                out += [r.prob for r in parser.process() if r.final]
        np.testing.assert_allclose(np.stack(got), np.stack(want), atol=1e-5)
        verdict = engine.verify(model, "cpu", lengths=(1, 5, 10), batches=(1, 3))
        assert verdict.passed and verdict.max_abs_diff < 1e-5 and verdict.engine == "float64-test"
        calls = engine.calls
        clip = make_media(tmp_path / "clip.mp4", 2.0, size=(32, 32))
        run(RunConfig(media=clip, backend="float64-test", random_weights=True, device="cpu", output_format="jsonl"))
        assert engine.calls > calls
        assert engine.workloads[-1] == Workload(batch=8, window=10)  # what a file sends, said before the first snippet
        assert sum('"kind": "snippet"' in line for line in capsys.readouterr().out.splitlines()) == 2
    finally:
        unregister("float64-test")
    assert "float64-test" not in ENGINES


def test_the_workload_names_the_shapes_a_run_sends():
    """The head shapes CUDA graphs capture at warm-up and TensorRT's profiles are built
    for, and the extractor's call sizes, are the ones the parser and extractor send."""
    from avvp_stream.features.extractor import FeatureExtractor

    assert Workload(1, 10).head_shapes() == [(1, t) for t in range(1, 11)]
    assert Workload(8, 10).head_shapes()[-1] == (8, 10)
    from avvp_stream.backends import Backend

    parser_shapes = set()

    class Recorder(Backend):
        def head(self, *inputs, keys=None):
            parser_shapes.add(inputs[0].shape[:2])
            b, t = inputs[0].shape[:2]
            return np.zeros((b, 25), np.float32), np.zeros((b, t, 2, 25), np.float32)

    parser = OnlineParser(Recorder(), CommitPolicy(10, 0))
    for _ in range(14):
        parser.insert_snippet(np.zeros(128), np.zeros(2048), np.zeros(512))
        parser.process()
    assert parser_shapes == set(Workload(1, 10).head_shapes())  # live: one window per snippet
    fx = FeatureExtractor(device="cpu", random_weights=True, frame_batch=16)
    sizes = {spec.network: fx.call_sizes(spec, 8) for spec in fx.specs}
    assert sizes == {"vggish": [8], "resnet152": [16], "r2plus1d_18": [2]}
    x = [np.random.default_rng(0).integers(0, 255, (8, 8, 24, 32, 3), dtype=np.uint8)]
    seen = {}

    class Sizes:
        def run(self, name, t):
            seen.setdefault(name, set()).add(len(t))
            return torch.zeros(len(t), {"vggish": 128, "resnet152": 2048, "r2plus1d_18": 512}[name])

    fx.use_networks(Sizes())
    fx.snippets(np.zeros((8, 16000), np.float32), x[0])
    assert {k: sorted(v) for k, v in seen.items()} == sizes


def test_onnxruntime_engine_verifies_itself(model):
    from avvp_stream.backends import get

    verdict = get("onnxruntime").verify(model, "cpu", lengths=(1, 4, 10), batches=(1, 8))
    assert verdict.passed and verdict.max_abs_diff < 1e-5 and verdict.speedup > 0


def test_auto_passes_over_an_engine_that_fails_verification(tmp_path, monkeypatch):
    """A corrupted ONNX Runtime artefact in the cache (the streaming head of other
    weights, under this model's name) fails verification: auto falls back to torch with
    one note saying why, and the labels are still produced."""
    import os
    import shutil

    from avvp_stream.backends.onnx_cache import cached_streaming_head, export_streaming_head

    from conftest import console_script
    from media import make_media

    home = tmp_path / "home"
    env = {**os.environ, "AVVP_STREAM_HOME": str(home)}
    monkeypatch.setenv("AVVP_STREAM_HOME", str(home))
    torch.manual_seed(0)
    right = HAN().eval()  # what `avvp-stream --random-weights` builds
    path = cached_streaming_head(right)
    torch.manual_seed(1)
    shutil.copy(export_streaming_head(HAN().eval(), tmp_path / "wrong.onnx"), path)
    clip = make_media(tmp_path / "clip.mp4", 3.0, size=(32, 32))
    proc = subprocess.run([*console_script("avvp-stream"), str(clip), "--random-weights", "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "not used (auto falls back)" in line]
    assert len(notes) == 1 and "onnxruntime differs from torch by" in notes[0], proc.stderr
    assert "HAN head on the torch backend (auto)" in proc.stderr
    snippets = [json.loads(line) for line in proc.stdout.splitlines() if '"kind": "snippet"' in line]
    assert [s["index"] for s in snippets] == [0, 1, 2]
    verdicts = list((home / "verdicts").glob("onnxruntime_*.json"))
    assert len(verdicts) == 1 and json.loads(verdicts[0].read_text())["max_abs_diff"] > 1e-3


def test_avvp_export_verify_prints_the_onnxruntime_row(tmp_path):
    import os

    from conftest import console_script

    proc = subprocess.run([*console_script("avvp-export"), "verify", "--random-weights", "--device", "cpu"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "AVVP_STREAM_HOME": str(tmp_path), "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "onnxruntime" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[0] == "onnxruntime" and cells[1] == "fp32" and float(cells[2]) < 1e-5 and cells[-1] == "pass"
    assert "not here: tensorrt needs a CUDA GPU" in proc.stdout


def test_cuda_graph_cache_evicts_the_least_recently_used():
    from collections import OrderedDict

    from avvp_stream.backends.cuda_graph import evict_lru

    graphs = OrderedDict((k, k) for k in "abcd")
    graphs.move_to_end("a")  # just used
    evict_lru(graphs, 2)
    assert list(graphs) == ["d", "a"]


def test_tensorrt_inputs_are_split_at_the_profile_maximum():
    from avvp_stream.backends.tensorrt_backend import batch_slices

    assert batch_slices(150, 64) == [slice(0, 64), slice(64, 128), slice(128, 150)]
    assert batch_slices(64, 64) == [slice(0, 64)] and batch_slices(1, 64) == [slice(0, 1)]


def test_tensorrt_keys_name_builder_settings_and_timing_caches_are_per_gpu(tmp_path):
    from avvp_stream.backends import tensorrt_build as te

    onnx = tmp_path / "head.onnx"
    onnx.write_bytes(b"graph")
    key = te.make_key(onnx, "NVIDIA H200", "9.0", "10.13.0", "fp32")
    other = te.make_key(onnx, "NVIDIA H200", "9.0", "10.13.0", "fp32",
                        builder={**te.BUILDER_SETTINGS, "workspace_bytes": 1 << 28})
    assert key.digest != other.digest and "workspace_bytes" in key.builder
    engine, meta = te.engine_paths(tmp_path, key, "han_head")
    te.write_engine(engine, meta, key, b"engine")
    assert te.is_fresh(engine, meta, key) and not te.is_fresh(engine, meta, other)
    paths = {te.timing_cache_path(tmp_path, *ident) for ident in
             [("NVIDIA H200", "9.0", "10.13.0"), ("NVIDIA H200", "9.0", "11.0.0"), ("NVIDIA A100", "8.0", "10.13.0")]}
    assert len(paths) == 3 and all(p.parent == tmp_path for p in paths)
