#!/usr/bin/env python3
"""A tiny stand-in for the Hugging Face hub, for koala_hub's tests (no internet needed).

Serves one pipeline, built from a fixture folder (tests/data/fixtures/tiny-koala-700m), under several repo ids whose
name picks a behaviour:
  koala/tiny        the normal hub
  koala/flaky-*     the first GET of each large (LFS) file is cut off halfway through
  koala/corrupt     the UNet weights arrive with one byte changed (their ETag is the true sha256)
  koala/corrupt-small  unet/config.json arrives with one byte changed (its ETag is the true git blob id)
  koala/private     401 without "Authorization: Bearer secret-token"
  koala/gated       the listing works, every file answers 403 (GatedRepo)
  koala/slow-*      the CDN sends slowly (about 4 MB/s), so two downloads overlap
  anything else     404 (RepoNotFound)
Endpoints as the hub's: GET /api/models/{repo}/revision/{rev} (with ?blobs=true each sibling also has "size",
"blobId" and, for LFS files, "lfs": {"sha256", "size", "pointerSize"}, as huggingface_hub's RepoSibling); HEAD/GET /{repo}/resolve/{rev}/{path} (small files
answered directly with their git blob sha1 as ETag; LFS files with a 302 to /cdn/..., X-Linked-Etag = sha256 and
X-Linked-Size); HEAD/GET /cdn/{repo}/{sha256} with Range support. GET /_log returns the requests seen (and
/_log?clear=1 empties it). Prints "PORT <n>" on stdout once listening on 127.0.0.1 (port 0 = any free port).
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_EXT = (".safetensors", ".bin", ".onnx", ".png")
COMMIT = hashlib.sha1(b"koala-tiny-fixture").hexdigest()
TOKEN = "secret-token"


def build_repo(fixture):
    files = {}
    for root, _, names in os.walk(fixture):
        for n in names:
            full = os.path.join(root, n)
            rel = os.path.relpath(full, fixture).replace(os.sep, "/")
            if rel.startswith("reference."):
                continue
            with open(full, "rb") as f:
                files[rel] = f.read()
    # fp16 variant files beside the plain ones (same bytes: the engine loads them as they are), except for the VAE,
    # which keeps only plain weights (so the client's per-component fallback is exercised).
    for comp, stem in (("unet", "diffusion_pytorch_model"), ("text_encoder", "model"), ("text_encoder_2", "model")):
        files[f"{comp}/{stem}.fp16.safetensors"] = files[f"{comp}/{stem}.safetensors"]
    # What a real repo also holds and a pipeline does not need.
    files["unet/diffusion_pytorch_model.bin"] = b"\x80\x02pickle" * 1000
    files["unet/diffusion_pytorch_model.fp16.bin"] = b"\x80\x02pickle16" * 1000
    files["vae_encoder/model.onnx"] = b"onnx-encoder" * 500
    files["vae_encoder/config.json"] = b"{}"
    files["vae_decoder/model.onnx"] = b"onnx-decoder" * 500
    files["README.md"] = b"# tiny koala\n![sample](koala.png)\n"
    files["koala.png"] = b"\x89PNG\r\n\x1a\n" + b"\0" * 4000
    files[".gitattributes"] = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    return files


def git_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(data):
    """The git-lfs pointer file that git stores for an LFS file (its git blob id is the file's blobId)."""
    return b"version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (
        hashlib.sha256(data).hexdigest().encode(), len(data))


class Hub:
    def __init__(self, fixture):
        self.files = build_repo(fixture)
        self.sha256 = {p: hashlib.sha256(d).hexdigest() for p, d in self.files.items()}
        self.by_sha = {self.sha256[p]: d for p, d in self.files.items()}
        self.log = []
        self.cut = set()
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-hub/1"

    def log_message(self, *args):
        pass

    @property
    def hub(self):
        return self.server.hub

    def record(self, status):
        with self.hub.lock:
            self.hub.log.append({"method": self.command, "path": urllib.parse.unquote(self.path),
                                 "range": self.headers.get("Range"), "status": status,
                                 "auth": self.headers.get("Authorization")})

    def answer(self, status, headers=None, body=b""):
        self.record(status)
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def error(self, status, code, message):
        self.answer(status, {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"},
                    json.dumps({"error": message}).encode())

    def repo_behaviour(self, org, name):
        if org != "koala":
            return None
        for b in ("tiny", "corrupt", "corrupt-small", "private", "gated"):
            if name == b:
                return b
        for b in ("flaky", "slow"):
            if name.startswith(b + "-"):
                return b
        return None

    def check_repo(self, org, name):
        """The behaviour, or None after answering an error."""
        b = self.repo_behaviour(org, name)
        if b is None:
            self.error(404, "RepoNotFound", f"Repository {org}/{name} not found")
            return None
        if b == "private" and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.error(401, "RepoNotFound", "Invalid username or password.")
            return None
        return b

    def do_HEAD(self):
        self.route()

    def do_GET(self):
        self.route()

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
        if parts == ["_log"]:
            with self.hub.lock:
                body = json.dumps(self.hub.log).encode()
                if "clear=1" in url.query:
                    self.hub.log = []
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if len(parts) == 6 and parts[:2] == ["api", "models"] and parts[4] == "revision":
            return self.listing(parts[2], parts[3], parts[5], "blobs=true" in url.query)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve(parts[0], parts[1], parts[3], "/".join(parts[4:]))
        if len(parts) == 3 and parts[0] == "cdn":
            return self.cdn(parts[1], parts[2])
        self.error(404, "NotFound", "no such endpoint")

    def revision_ok(self, rev):
        if rev in ("main", COMMIT):
            return True
        self.error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return False

    def listing(self, org, name, rev, blobs):
        if self.check_repo(org, name) is None or not self.revision_ok(rev):
            return
        siblings = []
        for p in sorted(self.hub.files):
            data = self.hub.files[p]
            s = {"rfilename": p}
            if blobs:
                if p.endswith(LFS_EXT):
                    pointer = lfs_pointer(data)
                    s.update({"blobId": git_sha1(pointer), "size": len(data),
                              "lfs": {"sha256": self.hub.sha256[p], "size": len(data), "pointerSize": len(pointer)}})
                else:
                    s.update({"blobId": git_sha1(data), "size": len(data)})
            siblings.append(s)
        body = json.dumps({"id": f"{org}/{name}", "modelId": f"{org}/{name}", "sha": COMMIT,
                           "siblings": siblings}).encode()
        self.answer(200, {"Content-Type": "application/json"}, body)

    def resolve(self, org, name, rev, path):
        b = self.check_repo(org, name)
        if b is None or not self.revision_ok(rev):
            return
        if b == "gated":
            return self.error(403, "GatedRepo", f"Access to model {org}/{name} is restricted. You must have access "
                                                "to it and be authenticated to access it. Please log in.")
        data = self.hub.files.get(path)
        if data is None:
            return self.error(404, "EntryNotFound", f"{path} does not exist on main")
        common = {"X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes"}
        if path.endswith(LFS_EXT):
            sha = self.hub.sha256[path]
            common.update({"X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)),
                           "ETag": f'"{git_sha1(lfs_pointer(data))}"',  # the pointer file's
                           "Location": f"/cdn/{org}--{name}/{sha}?X-Amz-Signature=fake"})
            return self.answer(302, common)
        common["ETag"] = f'"{git_sha1(data)}"'
        if b == "corrupt-small" and path == "unet/config.json":
            data = data[:10] + bytes([data[10] ^ 0x01]) + data[11:]
        self.send_data(data, common)

    def cdn(self, repo, sha):
        org, _, name = repo.partition("--")
        b = self.repo_behaviour(org, name)
        data = self.hub.by_sha.get(sha)
        if b is None or data is None:
            return self.answer(404, {}, b"NoSuchKey")
        if b == "corrupt" and data is self.hub.files["unet/diffusion_pytorch_model.fp16.safetensors"]:
            data = data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:]
        headers = {"ETag": f'"{hashlib.md5(data).hexdigest()}"', "Accept-Ranges": "bytes"}
        cut = False
        if b == "flaky" and self.command == "GET":
            with self.hub.lock:
                key = (repo, sha)
                if key not in self.hub.cut and len(data) > 10000:
                    self.hub.cut.add(key)
                    cut = True
        self.send_data(data, headers, cut=cut, slow=(b == "slow"))

    def send_data(self, data, headers, cut=False, slow=False):
        start, end, status = 0, len(data), 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, _, z = rng[6:].partition("-")
            start = int(a) if a else 0
            end = int(z) + 1 if z else len(data)
            if start >= len(data):
                return self.answer(416, {"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        body = data[start:end]
        self.record(status)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if cut:
            # Half the body, then the connection goes away (as a dropped connection).
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        step = 64 * 1024
        for i in range(0, len(body), step):
            self.wfile.write(body[i:i + step])
            if slow:
                time.sleep(0.015)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that goes away mid-answer (a cancel, a test's cut) is expected here.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    server.hub = Hub(args.fixture)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
