"""A small threaded HTTP server (standard library only) that serves one page and a JSON/PNG API.

Why server-side rendering instead of a WebGL scene (e.g. viser): the pictures come from the same renderer and
the same OpenCV cameras as the tracker, so what the viewer shows *is* the tracking result pixel for pixel;
the page works in any browser, also through an ``ssh -L`` tunnel from a GPU-less cluster node, and without
WebGL; and there is no runtime dependency beyond the project itself.

Routes are plain functions ``(query: dict, body: dict) -> Response``; rendering calls are serialised by one
lock (torch on CPU is already parallel inside a call).

Security (any web page the user visits can send requests to localhost): every launch makes a secret token
that the printed URL carries (``/?token=…``, as Jupyter does) and the page sends with every API call
(``X-Vhap-Token`` header); requests without it get 403. A ``Host`` header that names neither this machine
nor an IP address is refused (DNS rebinding), so is an ``Origin`` other than the server's own, and POST
bodies must be ``application/json`` (a cross-site form or ``text/plain`` fetch cannot send that without a
CORS preflight, which this server never grants).
"""

from __future__ import annotations

import hmac
import io
import ipaddress
import json
import secrets
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


TOKEN_HEADER = "X-Vhap-Token"
MAX_BODY_BYTES = 8 << 20


def _split_host(value: str) -> tuple[str, str]:
    """``'[::1]:8080'`` → (``'::1'``, ``'8080'``); ``'localhost'`` → (``'localhost'``, ``''``)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, rest.lstrip(":")
    host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    return host, port


def host_allowed(host_header: str | None, bound_host: str) -> bool:
    """Whether a request's ``Host`` names this server: an IP literal, localhost, this machine's name or ``--host``.

    A DNS-rebinding page reaches the server under its own domain name, which is none of these.
    """
    if not host_header:
        return False
    name = _split_host(host_header)[0].lower().rstrip(".")
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    names = {"localhost", bound_host.lower(), socket.gethostname().lower(), socket.getfqdn().lower()}
    return name in names or name.endswith(".localhost")


def _handler_for(app: App, quiet: bool, token: str, bound_host: str):
    class Handler(BaseHTTPRequestHandler):
        server_version = "vhap-viewer"

        def _reply(self, resp: Response) -> None:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            self.send_header("Cache-Control", "no-store")
            # no framing by other sites, no MIME sniffing, the token never leaves in a Referer
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Content-Security-Policy", "frame-ancestors 'none'")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            self.wfile.write(resp.body)

        def _refuse(self, status: int, message: str) -> None:
            self._reply(json_response({"error": message}, status))

        def _checked(self) -> tuple[str, dict] | None:
            """(path, query) of an allowed request; otherwise the refusal is sent and None returned."""
            if not host_allowed(self.headers.get("Host"), bound_host):
                self._refuse(403, "Host header not allowed (open the URL the command printed)")
                return None
            origin = self.headers.get("Origin")
            if origin is not None and origin != f"http://{self.headers.get('Host')}":
                self._refuse(403, f"cross-origin request from {origin!r} refused")
                return None
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            given = self.headers.get(TOKEN_HEADER) or query.pop("token", None) or ""
            if not hmac.compare_digest(given.encode(), token.encode()):
                self._refuse(403, "missing or wrong token: open the URL the command printed (it ends in ?token=...)")
                return None
            return url.path, query

        def do_GET(self) -> None:  # noqa: N802 (http.server API)
            checked = self._checked()
            if checked is not None:
                self._reply(app.handle(checked[0], checked[1], {}))

        def do_POST(self) -> None:  # noqa: N802
            checked = self._checked()
            if checked is None:
                return
            media = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if media != "application/json":
                self._refuse(415, "POST bodies must be application/json")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._refuse(413, f"body larger than {MAX_BODY_BYTES} bytes")
                return
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError):
                self._refuse(400, "body is not JSON")
                return
            self._reply(app.handle(checked[0], checked[1], body if isinstance(body, dict) else {}))

        def log_message(self, fmt, *args) -> None:
            if not quiet:
                super().log_message(fmt, *args)

    return Handler


class AppServer(ThreadingHTTPServer):
    """The HTTP server of one launch; ``token`` is its secret and ``url`` the address to open (with the token)."""

    daemon_threads = True
    token: str = ""

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in str(host) else host)
        return f"http://{shown}:{port}/?token={self.token}"


def make_server(
    app: App, host: str = "127.0.0.1", port: int = 8080, quiet: bool = True, token: str | None = None
) -> AppServer:
    """Bind (port 0 = any free port; see ``server.server_address``) without serving yet.

    ``token`` None makes a fresh random one (``server.token``); every request must carry it.
    """
    token = token or secrets.token_urlsafe(24)
    try:
        server = AppServer((host, port), _handler_for(app, quiet, token, host))
    except OSError as e:
        raise VhapError(f"cannot listen on {host}:{port} ({e})", fix="pass another --port (or --port 0)") from e
    server.token = token
    return server


def access_hint(host: str, port: int, what: str, token: str = "") -> str:
    """The URL to open (with the launch's token) and how to reach it through an SSH tunnel from another machine."""
    node = socket.gethostname()
    shown = "localhost" if host in ("127.0.0.1", "localhost", "0.0.0.0", "::") else host
    q = f"?token={token}" if token else ""
    lines = [
        f"vhap {what}: open http://{shown}:{port}/{q} in a browser",
        f"  from another machine (e.g. this is the cluster node '{node}'):",
        f"    ssh -N -L {port}:localhost:{port} <user>@{node}    then open http://localhost:{port}/{q}",
        f"  (through a login node: ssh -N -J <user>@<login-node> -L {port}:localhost:{port} <user>@{node})",
        "  the token in the URL is this launch's secret: share it only with whom may use the server",
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
