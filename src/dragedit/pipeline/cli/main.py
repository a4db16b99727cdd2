"""`dragedit` command line: parsing, the process's share of the cores, and errors as one line.

User errors print `dragedit: error: ...` in this command line's words and exit with status 2; no traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys

from dragedit.common.errors import UserError

from .commands import COMMANDS
from .options import worded


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dragedit", description="Edit portrait photos by dragging points (DragGAN + PTI).")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f".commands.{name}", __package__)
        module.add_parser(sub)
        sub.choices[name].set_defaults(func=module.run)
    return p


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (tests and embedding tools swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _log_to_stderr() -> None:
    """dragedit's warnings and notes, as plain lines on stderr (they carry their own 'warning:'/'note:')."""
    from dragedit.common.environment import log

    if not any(isinstance(h, _CurrentStderr) for h in log.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


@contextlib.contextmanager
def _only_the_result_on_stdout(args: argparse.Namespace):
    """With --json, stdout holds exactly the one JSON document: anything else a library prints there (a
    download's progress, a 'Setting up' line) goes to stderr."""
    if not getattr(args, "json", False):
        yield
        return
    args.stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        yield


def main(argv: list[str] | None = None) -> int:
    from dragedit.common.threads import CoreShare

    args = build_parser().parse_args(argv)
    _log_to_stderr()
    try:
        with CoreShare(), _only_the_result_on_stdout(args):
            return args.func(args)
    except UserError as exc:
        from dragedit.pipeline.core.errors import SessionMismatch, WouldOverwrite

        message = worded(exc)
        if isinstance(exc, SessionMismatch) and getattr(args, "command", None) == "edit":
            message += " (--session DIR)"
        elif isinstance(exc, WouldOverwrite):
            message = message.replace("(or allow replacing it,", "(or pass --overwrite to replace it,")
        print(f"dragedit: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dragedit: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
