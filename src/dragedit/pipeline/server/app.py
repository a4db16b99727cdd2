"""`dragedit serve`: the web editor's page and its HTTP API (`pip install 'dragedit[web]'`), wired together.

`create_app` puts the pieces in order: the guard every request passes (`security.py`: Host, Origin, the
token), the routes (`routes.py`), the store of sessions on disk (`store.py`), the job runner (`jobs.py`),
and one error shape, `{"error": "one line"}`, for everything, an unexpected error included (a request id
in the answer, the traceback in the server's log only). `serve` binds the socket before it prints the URL.

(No `from __future__ import annotations` here: FastAPI reads the handlers' annotations at definition time.)
"""
import math
import secrets
import socket
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dragedit.common.environment import log
from dragedit.common.errors import UserError, one_line
from dragedit.pipeline.core.errors import SettingError
from dragedit.pipeline.core.settings import EditSettings

from .security import LOCAL_HOSTS, allowed_names, refusal, token_matches
from .store import ApiError, SessionStore

WEB = Path(__file__).parent / "web"


@dataclass
class ServeConfig:
    """What `dragedit serve` runs with."""

    root: Path = Path("dragedit-sessions")
    host: str = "127.0.0.1"
    port: int = 7860
    token: str | None = None  # required on every request when set; generated for non-local hosts
    allow_hosts: tuple[str, ...] = ()  # more Host names to answer to (a reverse proxy's, a LAN name)
    max_upload_mb: float = 40.0
    max_queued: int = 4
    preview_every: int = 5  # drag steps between live preview renders
    settings: EditSettings = field(default_factory=EditSettings)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.allow_hosts = tuple(self.allow_hosts)
        if not (isinstance(self.max_upload_mb, (int, float)) and math.isfinite(self.max_upload_mb)
                and self.max_upload_mb > 0):
            raise SettingError("max_upload_mb", self.max_upload_mb, "use a finite positive size in MB")
        if not (isinstance(self.port, int) and 0 < self.port < 65536):
            raise SettingError("port", self.port, "use a port from 1 to 65535")
        if self.token == "" and self.host not in LOCAL_HOSTS:
            raise SettingError("token", "''", "an empty token would let anyone on the network in; leave it out "
                                              "and a random one is made")
        if self.token is None and self.host not in LOCAL_HOSTS:
            self.token = secrets.token_urlsafe(24)

    def url(self) -> str:
        """The address to open: for a server bound to every address (0.0.0.0, ::), this machine's own
        address or name, which it answers to, never the wildcard, which no browser can open."""
        from .security import WILDCARDS, machine_names

        host = self.host
        if host.strip("[]") in WILDCARDS:
            found = machine_names()
            host = next((n for n in found if n.replace(".", "").isdigit()), found[0] if found else "localhost")
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")


def create_app(config: ServeConfig):
    """The FastAPI application; `serve` runs it under uvicorn, tests call it in process."""
    from fastapi import FastAPI
    from fastapi.responses import FileResponse

    from .jobs import JobRunner
    from .routes import router

    store = SessionStore(config.root)
    runner = JobRunner(max_queued=config.max_queued, scrub=store.private)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        runner.shutdown()

    app = FastAPI(title="dragedit", version=_version(), lifespan=lifespan,
                  description="Edit portrait photos by dragging points. Errors are `{\"error\": \"one line\"}`.")
    app.state.config, app.state.store, app.state.runner = config, store, runner
    _errors(app)
    _guard(app, config)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(WEB / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        if name not in {"app.js", "style.css"}:
            raise ApiError(404, f"no such file: {name}")
        return FileResponse(WEB / name)

    app.include_router(router)
    return app


def _errors(app) -> None:
    """Every answer that is not a success is `{"error": "one line"}`."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return JSONResponse({"error": one_line(exc.message)}, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        return JSONResponse({"error": f"invalid request: {where} {first.get('msg', '')}".strip()}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        rid = uuid.uuid4().hex[:12]
        log.error("dragedit serve: request %s (%s %s) failed", rid, request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": f"internal error (request {rid}); the server's log has the details"},
                            status_code=500)


def _guard(app, cfg: ServeConfig) -> None:
    """Host allow-list and Origin check on every request, then the token off localhost."""
    from fastapi import Request
    from fastapi.responses import JSONResponse

    names = allowed_names(cfg.host, cfg.allow_hosts)

    @app.middleware("http")
    async def _check(request: Request, call_next):
        refused = refusal(request.method, request.headers, names, cfg.port)
        if refused:
            return JSONResponse({"error": refused[1]}, status_code=refused[0])
        if cfg.token:
            given = (request.query_params.get("token") or request.headers.get("x-dragedit-token")
                     or request.cookies.get("dragedit_token") or "")
            if not token_matches(given, cfg.token):
                return JSONResponse({"error": "missing or wrong token; open the URL dragedit serve printed"},
                                    status_code=401)
        response = await call_next(request)
        if cfg.token and request.query_params.get("token"):
            response.set_cookie("dragedit_token", cfg.token, httponly=True, samesite="strict")
        return response


def _version() -> str:
    from dragedit import __version__

    return __version__


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a one-line error (port in use, a host that does not resolve or is not here)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SettingError("host", host, f"cannot be resolved ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = "is in use by another program" if exc.errno == 98 else f"cannot be used ({exc.strerror})"
        raise SettingError("port" if exc.errno == 98 else "host", port if exc.errno == 98 else host,
                           f"{reason}; choose another") from None
    return sock


def serve(config: ServeConfig) -> None:
    """Bind, say where, and serve until Ctrl-C (uvicorn)."""
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("fastapi", "uvicorn", "multipart")):
        raise UserError("dragedit serve needs the web extra: pip install 'dragedit[web]'")
    import uvicorn

    app = create_app(config)
    sock = bind(config.host, config.port)
    print(f"dragedit serve: open {config.url()}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
