"""`dragedit` command line: parsing, the process's share of the cores, and errors as one line.

User errors print `dragedit: error: ...` in this command line's words and exit with status 2; no traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys

from dragedit.common.errors import UserError, one_line

from .commands import COMMANDS
from .options import worded


class UsageError(UserError):
    """The command line itself is malformed (argparse's errors), said in one line like any user error."""


class _Parser(argparse.ArgumentParser):
    """argparse with its errors raised as one-line `UsageError`s (no usage block; `--help` still prints it)."""

    def error(self, message: str):
        import re

        # "argument --strength/-s: 1e309 is not ..." -> "--strength 1e309 is not ...": the flag as typed
        message = re.sub(r"^argument ([^:/ ]+)(?:/\S+)?: (?=\S+ is not)", r"\1 ", one_line(message))
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dragedit", description="Edit portrait photos by dragging points (DragGAN + PTI).")
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


def _glue_negative_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`--drag -5,10:-3,8` as people type it: argparse reads a value that starts with '-' as an option, so an
    option that takes a value is joined to a following value that starts with a minus and a digit."""
    takes_value = set()
    stack = [parser]
    while stack:
        p = stack.pop()
        for a in p._actions:
            if a.option_strings and a.nargs is None and not isinstance(a, argparse._StoreConstAction):
                takes_value |= set(a.option_strings)
            if isinstance(a, argparse._SubParsersAction):
                stack.extend(a.choices.values())
    out: list[str] = []
    for tok in argv:
        if out and out[-1] in takes_value and len(tok) > 1 and tok[0] == "-" and (tok[1].isdigit() or tok[1] == "."):
            out[-1] = f"{out[-1]}={tok}"
        else:
            out.append(tok)
    return out


def _say(exc: UserError, args: argparse.Namespace | None, json_wanted: bool) -> None:
    """A user error: `dragedit: error: ...` on stderr, and with --json also one JSON document on stdout."""
    import json

    from dragedit.common.errors import FieldError
    from dragedit.pipeline.core.errors import SessionMismatch, WouldOverwrite

    message = one_line(worded(exc))
    if isinstance(exc, SessionMismatch) and getattr(args, "command", None) == "edit":
        message += " (--session DIR)"
    elif isinstance(exc, WouldOverwrite):
        message = message.replace("(or allow replacing it,", "(or pass --overwrite to replace it,")
    elif isinstance(exc, FieldError) and exc.field == "photo" and "missing" in exc.advice:
        message = (f"the session's photo {exc.value} is missing (moved or deleted); edit it where it is now: "
                   "dragedit edit NEWPATH --session SESSION")
    print(f"dragedit: error: {message}", file=sys.stderr)
    if json_wanted:
        field = exc.field if isinstance(exc, FieldError) else None
        doc = {"error": {"kind": type(exc).__name__, "field": field, "message": message}}
        print(json.dumps(doc), file=getattr(args, "stdout", None) or sys.stdout)


def main(argv: list[str] | None = None) -> int:
    from dragedit.common.threads import CoreShare

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    json_wanted = "--json" in argv
    try:
        args = parser.parse_args(_glue_negative_values(parser, argv))
    except UserError as exc:
        _say(exc, None, json_wanted)
        return 2
    _log_to_stderr()
    try:
        from dragedit.pipeline.core.manifest import new_command

        new_command()
        # a command takes its share of the cores for its run; `serve` only while a job runs (an idle server
        # must not change what an edit beside it computes with)
        share = contextlib.nullcontext() if getattr(args, "share_per_job", False) else CoreShare()
        with share, _only_the_result_on_stdout(args):
            return args.func(args)
    except UserError as exc:
        _say(exc, args, getattr(args, "json", False))
        return 2
    except KeyboardInterrupt:
        print("dragedit: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`dragedit models list | head`): nothing left to say to it
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
