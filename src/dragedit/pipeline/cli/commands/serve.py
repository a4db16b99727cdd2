"""`dragedit serve`: the web editor and its HTTP API (`pip install 'dragedit[web]'`)."""
from __future__ import annotations

import argparse
from .. import options as O


def add_parser(sub) -> None:
    from dragedit.pipeline.server.app import ServeConfig as W

    p = sub.add_parser("serve", help="the web editor and HTTP API (pip install 'dragedit[web]')")
    g = p.add_argument_group("server")
    g.add_argument("--host", help=f"address to listen on (default {O.default(W, 'host')}; any other host requires "
                                  "the token printed in the start URL)")
    g.add_argument("--port", type=O.whole, help=f"port (default {O.default(W, 'port')})")
    g.add_argument("--root", help=f"folder holding the sessions (default ./{O.default(W, 'root')})")
    g.add_argument("--token", help="the access token (default: random on a non-local host, none on localhost)")
    g.add_argument("--allow-host", action="append", metavar="NAME",
                   help="another Host name to answer to (a reverse proxy's, a LAN name); repeat for several")
    g.add_argument("--max-upload-mb", type=O.number,
                   help=f"largest photo upload (default {O.default(W, 'max_upload_mb'):g} MB)")
    O.add_paste(p)
    O.add_compute(p)
    O.add_drag(p)
    O.add_pti(p)
    p.set_defaults(share_per_job=True)  # counted among the dragedit processes only while a job runs


def run(args: argparse.Namespace) -> int:
    from dragedit.pipeline.server.app import ServeConfig, serve

    cfg = ServeConfig(**O.given(root=args.root, host=args.host, port=args.port, token=args.token,
                                allow_hosts=tuple(args.allow_host or ()) or None, max_upload_mb=args.max_upload_mb),
                      settings=O.settings_from(args))
    serve(cfg)
    return 0
