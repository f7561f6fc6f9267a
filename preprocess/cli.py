"""What every command-line entry of the suite shares (``python -m ...`` and ``mathlora ...``): the argument
parser, the handling of user errors, and the hiding of third-party import noise.

- :class:`Parser`: argparse with abbreviations refused (``--smok`` is not ``--smoke``), a "did you mean"
  hint for an unknown option or subcommand, ``python -m <module>`` usage and descriptions printed as
  written (no re-wrapping).
- :class:`UserError` and :func:`run_main`: a bad input a user can fix (a missing file, a bad option
  value) is one ``error: ...`` line on stderr and exit status 2, never a traceback; a :class:`Failure`
  (a transfer or an external tool failed) is one such line with exit status 1. :func:`reported_as`
  turns the exceptions a CLI expects from its library calls into either.
- :func:`quiet_imports`: MindSpore's deprecation notices and MindFormers' import-time warnings
  (``Import PyNativeDeepseekV3ForCausalLM failed: No module named 'hyper_parallel'``) are hidden
  unless ``--verbose``.

It lives at the bottom of the import order (preprocess) so that every package can use it; it imports
nothing of the suite.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator

EXIT_USAGE = 2  # argparse's own status for a bad command line; used for every user error
EXIT_FAILURE = 1
# Set by the ``mathlora`` entry point: the usage line then names ``mathlora <subcommand>`` instead of
# ``python -m <module>``.
_prog_override: list[str] = []


class CliError(Exception):
    """An error :func:`run_main` reports as one ``error: MESSAGE`` line with exit status ``status``."""

    status = EXIT_FAILURE


class UserError(CliError):
    """A problem with the user's input (file, option value) that :func:`run_main` reports as one line
    with exit status 2; the message names the file or option."""

    status = EXIT_USAGE


class Failure(CliError):
    """The input was fine but the work failed (a transfer, a verification, an external runtime):
    reported as one line with exit status 1."""


@contextlib.contextmanager
def reported_as(error: type[CliError], *kinds: type[Exception]) -> Iterator[None]:
    """Inside, an exception of ``kinds`` becomes ``error`` with the same message, for :func:`run_main`."""
    try:
        yield
    except kinds as exc:
        raise error(str(exc)) from None


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with the suite's conventions: ``allow_abbrev=False``, a raw
    description (docstrings print as written) and defaults shown where a help text exists, and an
    error for an unknown option that suggests the closest known one. Subparsers are Parsers too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        if _prog_override and kwargs.get("prog", "").startswith("python -m "):
            kwargs["prog"] = _prog_override[-1]
        super().__init__(*args, **kwargs)
        # Read through wants_verbose(argv) (before parsing); SUPPRESS keeps a subcommand's parser from
        # resetting a --verbose given before the subcommand.
        self.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                          help="show third-party warnings at import (MindSpore deprecations, MindFormers' "
                               "optional models)")

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        # A misspelt option is the likelier cause of any other complaint (``--confi`` leaves --config
        # "required"), so it is reported first.
        given = getattr(self, "_given", [])
        given = given[:given.index("--")] if "--" in given else given
        known = _options(self)
        unknown = [a for a in given if a.startswith("--") and a.split("=", 1)[0] not in known]
        if unknown and not message.startswith("unrecognized arguments"):
            message = f"unrecognized arguments: {' '.join(unknown)}"
        super().error(message + suggestion(self, message))


def _options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of ``parser`` and of its subcommands' parsers."""
    found = set(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _options(sub)
    return found


def suggestion(parser: argparse.ArgumentParser, message: str) -> str:
    """`` (did you mean --x?)`` for the first unknown option named in an argparse error message, or ''."""
    prefix = "unrecognized arguments: "
    if not message.startswith(prefix):
        return ""
    for word in message[len(prefix):].split():
        option = word.split("=", 1)[0]
        if option.startswith("-"):
            close = difflib.get_close_matches(option, sorted(_options(parser)), n=1, cutoff=0.6)
            if close:
                return f" (did you mean {close[0]}?)"
    return ""


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run a CLI's ``main(argv)``; a :class:`UserError` becomes ``error: MESSAGE`` on stderr and exit
    status 2, a :class:`Failure` the same line and status 1. Returns the exit status (``main``'s, 0 for
    None)."""
    try:
        return main(argv) or 0
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status


@contextlib.contextmanager
def prog(name: str) -> Iterator[None]:
    """Parsers built inside name themselves ``name`` in usage lines (``mathlora train``)."""
    _prog_override.append(name)
    try:
        yield
    finally:
        _prog_override.pop()


def wants_verbose(argv: list[str] | None) -> bool:
    """Whether ``--verbose`` is on the command line (read before argparse, as the imports it governs
    happen before parsing in some CLIs)."""
    return "--verbose" in (sys.argv[1:] if argv is None else argv)


@contextlib.contextmanager
def quiet_imports(verbose: bool = False) -> Iterator[None]:
    """Import MindSpore/MindFormers inside this block: their import-time warnings (deprecations,
    MindFormers' optional models that need packages not installed) are hidden unless ``verbose``.
    Errors still show. Also sets ``GLOG_v=3`` (MindSpore: errors only) unless the environment sets it."""
    if verbose:
        yield
        return
    os.environ.setdefault("GLOG_v", "3")
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logging.disable(previous)
