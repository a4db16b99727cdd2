"""What every request must pass before a route sees it: the Host allow-list (no DNS rebinding), the Origin
check on state-changing requests (no cross-site requests from other web pages), JSON-only bodies for the
JSON routes, and the token off localhost, compared as bytes in constant time.

A browser lets any page send simple cross-site requests (a form post, `text/plain`), and a page on a name
that resolves to 127.0.0.1 (DNS rebinding) reads the answers; Jupyter and the dev servers guard against both
the same way: only the names this server answers to may appear in `Host`, and a request that changes
state must come from this server's own origin when a browser says where it comes from.
"""
from __future__ import annotations

import secrets
from urllib.parse import urlsplit

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def host_name(value: str) -> str:
    """`Host` or `Origin` netloc -> the lower-case name, without port or IPv6 brackets ('' if unparsable)."""
    try:
        return (urlsplit(f"//{value}").hostname or "").lower()
    except ValueError:
        return ""


def allowed_names(bound_host: str, extra: tuple[str, ...] = ()) -> set[str]:
    """The names this server answers to: localhost's, the address it is bound to, and `--allow-host`."""
    names = {*LOCAL_HOSTS, bound_host.lower().strip("[]"), *(h.lower().strip("[]") for h in extra)}
    return names - {"0.0.0.0", "::", ""}  # a wildcard bind is not a name anyone should send


def token_matches(given: str, token: str) -> bool:
    """Constant-time, and a non-ASCII guess is simply wrong (comparing str with non-ASCII raises)."""
    return secrets.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode("utf-8"))


def refusal(method: str, headers, names: set[str], port: int) -> tuple[int, str] | None:
    """(status, one-line reason) when a request must not reach the routes, else None."""
    if host_name(headers.get("host", "")) not in names:
        return 403, "this server does not answer to that Host name (use the URL dragedit serve printed, or --allow-host)"
    origin = headers.get("origin")
    if method in UNSAFE_METHODS and origin is not None:
        try:
            parts = urlsplit(origin)
            same = (parts.scheme in ("http", "https") and (parts.hostname or "").lower() in names
                    and (parts.port or (443 if parts.scheme == "https" else 80)) == port)
        except ValueError:
            same = False
        if not same:
            return 403, "cross-origin requests are refused; use the page dragedit serve printed"
    return None
