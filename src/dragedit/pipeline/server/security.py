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


WILDCARDS = ("0.0.0.0", "::", "")


def machine_names() -> list[str]:
    """This machine's own name and addresses (from its hosts file and resolver, no traffic to them), the
    names a browser elsewhere on the network uses for a server bound to every address; loopback left out."""
    import socket

    names: list[str] = []
    try:
        host = socket.gethostname()
        names.append(host.lower())
        for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP):
            addr = str(info[4][0]).lower()
            if addr not in names and not addr.startswith(("127.", "::1")):
                names.append(addr)
    except OSError:
        pass
    return names


def allowed_names(bound_host: str, extra: tuple[str, ...] = ()) -> set[str]:
    """The names this server answers to: localhost's, the address it is bound to (for a wildcard bind, this
    machine's name and addresses), and `--allow-host`."""
    bound = bound_host.lower().strip("[]")
    names = {*LOCAL_HOSTS, bound, *(h.lower().strip("[]") for h in extra)}
    if bound in WILDCARDS:
        names |= set(machine_names())
    return names - set(WILDCARDS)  # a wildcard is not a name anyone should send


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
            same = (parts.scheme == "http" and (parts.hostname or "").lower() in names  # it serves plain http
                    and (parts.port or 80) == port)
        except ValueError:
            same = False
        if not same:
            return 403, "cross-origin requests are refused; use the page dragedit serve printed"
    return None
