"""A loopback HTTP server with Range support, for download tests (never the internet)."""
from __future__ import annotations

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


@contextlib.contextmanager
def serve_bytes(files: dict[str, bytes], log: list | None = None, cut_after: int | None = None) -> Iterator[str]:
    """Serve `files` on 127.0.0.1; `cut_after` ends a full (non-range) response early to simulate a drop."""
    log = log if log is not None else []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            data = files.get(self.path)
            rng = self.headers.get("Range")
            log.append((self.path, rng))
            if data is None:
                self.send_response(404)
                self.end_headers()
                return
            start = 0
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if cut_after is not None and not rng:
                self.wfile.write(body[:cut_after])
                self.wfile.flush()
                self.connection.close()
                return
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
