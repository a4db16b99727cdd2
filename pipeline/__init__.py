"""dragedit's pipeline: stages (align, invert, drag, composite), sessions, cache, CLI.

Import what you need from the submodules; `pipeline.api` holds the high-level library calls.
"""
try:
    from importlib.metadata import version as _version

    __version__ = _version("dragedit")
except Exception:  # running from a checkout that is not installed
    __version__ = "0.1.0"
