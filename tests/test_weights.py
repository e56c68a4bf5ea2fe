"""The real download / verify / cache code against a loopback HTTP server."""

import hashlib
import http.server
import os
import socket
import subprocess
import threading

import pytest

from avvp_stream import weights
from avvp_stream.errors import AvvpError
from avvp_stream.weights import WeightFile, file_digests, resolve, resolve_all


class Server:
    """Serves ``routes`` {path: bytes}; ``cut`` {path: n} sends a full Content-Length but
    only n bytes, then closes (an interrupted transfer)."""

    def __init__(self):
        self.routes, self.cut, self.hits = {}, {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits.append(self.path)
                body = server.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: server.cut.get(self.path, len(body))])
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def payload(n=300_000, seed=0):
    return hashlib.sha256(str(seed).encode()).digest() * (n // 32)


def spec_for(server, name, data, path=None, **kw):
    path = path or f"/{name}.pth"
    server.routes[path] = data
    checksum = kw or {"sha256_prefix": hashlib.sha256(data).hexdigest()[:8]}
    return WeightFile(name, f"{name}.pth", server.url(path), **checksum)


def no_partial_files():
    folder = weights.weights_dir()
    return not folder.exists() or not [p for p in os.listdir(folder) if p.startswith(".")]


def test_download_verifies_caches_and_reuses(server):
    data = payload()
    spec = spec_for(server, "net", data)
    path = resolve(spec)
    assert path == weights.cached_path(spec) and path.read_bytes() == data
    assert resolve(spec) == path
    assert server.hits == ["/net.pth"]  # second call served from the cache


def test_git_blob_id_matches_git(server, tmp_path):
    data = payload(50_000, seed=1)
    (tmp_path / "f").write_bytes(data)
    git_id = subprocess.run(["git", "hash-object", str(tmp_path / "f")], capture_output=True, text=True).stdout.strip()
    assert file_digests(tmp_path / "f")[1] == git_id
    spec = spec_for(server, "han", data, git_blob_sha1=git_id)
    assert resolve(spec).read_bytes() == data


def test_wrong_checksum_is_rejected_and_not_cached(server):
    spec = spec_for(server, "bad", payload(), sha256_prefix="deadbeef")
    with pytest.raises(AvvpError, match="corrupt .*does not start with deadbeef"):
        resolve(spec)
    assert not weights.cached_path(spec).exists() and no_partial_files()


def test_interrupted_transfer_leaves_nothing(server):
    data = payload()
    spec = spec_for(server, "cut", data)
    server.cut["/cut.pth"] = 100_000
    with pytest.raises(AvvpError, match="cut off|failed"):
        resolve(spec)
    assert not weights.cached_path(spec).exists() and no_partial_files()
    server.cut.clear()
    assert resolve(spec).read_bytes() == data  # a later run completes it


def test_server_down_names_url_and_destination():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    spec = WeightFile("gone", "gone.pth", f"http://127.0.0.1:{port}/gone.pth", sha256_prefix="00000000")
    with pytest.raises(AvvpError) as err:
        resolve(spec)
    msg = str(err.value)
    assert "cannot download gone" in msg and spec.url in msg and str(weights.cached_path(spec)) in msg
    assert "\n" not in msg


def test_offline_lists_every_missing_file(server, monkeypatch):
    a = spec_for(server, "a", payload(1000, 2))
    b = spec_for(server, "b", payload(1000, 3))
    resolve(a)
    monkeypatch.setenv("AVVP_STREAM_OFFLINE", "1")
    c = spec_for(server, "c", payload(1000, 4))
    with pytest.raises(AvvpError) as err:
        resolve_all([(a, None), (b, None), (c, None)])
    msg = str(err.value)
    assert "offline" in msg and b.url in msg and c.url in msg and a.url not in msg
    assert str(weights.cached_path(b)) in msg
    assert resolve(a) == weights.cached_path(a)  # cached files still work offline


def test_explicit_path_wins_and_is_verified(server, tmp_path):
    data = payload(2000, 5)
    spec = spec_for(server, "x", data)
    good = tmp_path / "x.pth"
    good.write_bytes(data)
    assert resolve(spec, good) == good and server.hits == []
    bad = tmp_path / "y.pth"
    bad.write_bytes(b"nope")
    with pytest.raises(AvvpError, match="not the expected x weights"):
        resolve(spec, bad)
    with pytest.raises(AvvpError, match="x weights not found"):
        resolve(spec, tmp_path / "missing.pth")


def test_damaged_cache_entry_is_replaced(server):
    data = payload(5000, 6)
    spec = spec_for(server, "d", data)
    cached = weights.cached_path(spec)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(data[:100])
    assert resolve(spec).read_bytes() == data


def test_published_files_carry_checksums():
    from torchvision.models import ResNet152_Weights
    from torchvision.models.video import R2Plus1D_18_Weights

    assert weights.HAN_OFFICIAL.git_blob_sha1 == "ef441b4279b7272f6509d6c9f8bc6d522e9145ed"
    assert weights.HAN_OFFICIAL.url.endswith("fde56118f2c2e7c19188dfefa2569a37b70054fe/models/MMIL_Net.pt")
    resnet = weights.torchvision_file("resnet152", ResNet152_Weights.IMAGENET1K_V1)
    r2p1d = weights.torchvision_file("r2plus1d_18", R2Plus1D_18_Weights.KINETICS400_V1)
    assert resnet.sha256_prefix and r2p1d.sha256_prefix
    assert weights.VGGISH.sha256_prefix == "10086976"


def test_official_han_offline_says_where_to_put_it(monkeypatch):
    from avvp_stream import load_model

    monkeypatch.setenv("AVVP_STREAM_OFFLINE", "1")
    with pytest.raises(AvvpError) as err:
        load_model("official")
    assert weights.HAN_OFFICIAL.url in str(err.value) and "MMIL_Net.pt" in str(err.value)
