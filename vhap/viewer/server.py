"""A small threaded HTTP server (standard library only) that serves one page and a JSON/PNG API.

Why server-side rendering instead of a WebGL scene (e.g. viser): the pictures come from the same renderer and
the same OpenCV cameras as the tracker, so what the viewer shows *is* the tracking result pixel for pixel;
the page works in any browser, also through an ``ssh -L`` tunnel from a GPU-less cluster node, and without
WebGL; and there is no runtime dependency beyond the project itself.

Routes are plain functions ``(query: dict, body: dict) -> Response``; rendering calls are serialised by one
lock (torch on CPU is already parallel inside a call).
"""

from __future__ import annotations

import io
import json
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np

from vhap.errors import VhapError


@dataclass
class Response:
    body: bytes
    content_type: str = "application/json"
    status: int = 200


def json_response(obj, status: int = 200) -> Response:
    return Response(json.dumps(obj).encode(), "application/json", status)


def png_response(image: np.ndarray) -> Response:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=1)
    return Response(buf.getvalue(), "image/png")


Route = Callable[[dict, dict], Response]


class App:
    """A page plus routes; ``GET /`` serves ``page``, every other path is looked up in ``routes``."""

    def __init__(self, page: str, routes: dict[str, Route], title: str = "vhap"):
        self.page = page
        self.routes = routes
        self.title = title
        self.lock = threading.Lock()

    def handle(self, path: str, query: dict, body: dict) -> Response:
        if path in ("/", "/index.html"):
            return Response(self.page.encode(), "text/html; charset=utf-8")
        route = self.routes.get(path)
        if route is None:
            return json_response({"error": f"no route {path}"}, 404)
        try:
            with self.lock:
                return route(query, body)
        except VhapError as e:
            return json_response({"error": str(e)}, 400)
        except (ValueError, KeyError, TypeError) as e:
            return json_response({"error": f"bad request: {e}"}, 400)
        except Exception as e:  # keep serving; the page shows the message
            traceback.print_exc()
            return json_response({"error": f"{type(e).__name__}: {e}"}, 500)


def _handler_for(app: App, quiet: bool):
    class Handler(BaseHTTPRequestHandler):
        server_version = "vhap-viewer"

        def _reply(self, resp: Response) -> None:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(resp.body)

        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            self._reply(app.handle(url.path, query, {}))

        def do_POST(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._reply(json_response({"error": "body is not JSON"}, 400))
                return
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            self._reply(app.handle(url.path, query, body if isinstance(body, dict) else {}))

        def log_message(self, fmt, *args) -> None:
            if not quiet:
                super().log_message(fmt, *args)

    return Handler


def make_server(app: App, host: str = "127.0.0.1", port: int = 8080, quiet: bool = True) -> ThreadingHTTPServer:
    """Bind (port 0 = any free port; see ``server.server_address``) without serving yet."""
    try:
        server = ThreadingHTTPServer((host, port), _handler_for(app, quiet))
    except OSError as e:
        raise VhapError(f"cannot listen on {host}:{port} ({e})", fix="pass another --port (or --port 0)") from e
    server.daemon_threads = True
    return server


def access_hint(host: str, port: int, what: str) -> str:
    """The URL to open and how to reach it through an SSH tunnel from another machine."""
    node = socket.gethostname()
    shown = "localhost" if host in ("127.0.0.1", "localhost", "0.0.0.0", "::") else host
    lines = [
        f"vhap {what}: open http://{shown}:{port}/ in a browser",
        f"  from another machine (e.g. this is the cluster node '{node}'):",
        f"    ssh -N -L {port}:localhost:{port} <user>@{node}    then open http://localhost:{port}/",
        f"  (through a login node: ssh -N -J <user>@<login-node> -L {port}:localhost:{port} <user>@{node})",
        "  stop with Ctrl+C",
    ]
    return "\n".join(lines)


def serve_forever(server: ThreadingHTTPServer) -> None:
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
