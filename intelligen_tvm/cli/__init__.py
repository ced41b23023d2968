"""`intelligen-tvm`: compile, inspect, tune, benchmark and retrain from the command line.

Every command reads an ONNX model (or records) and says what it did; failures are one line on
stderr and an exit status (see EXIT_CODES), never a Python traceback for a user's mistake.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILED = 1        # the job ran and failed (TVM's build failed, nothing to train on, ...)
EXIT_USAGE = 2         # bad command line (argparse)
EXIT_INPUT = 3         # an input is missing or unreadable: model, records, target, cost model
EXIT_MISSING_TOOL = 4  # an external tool or device is needed and absent (dot, a GPU to tune on)

EXIT_CODES = f"""exit status:
  {EXIT_OK}  success
  {EXIT_FAILED}  the job failed (TVM build error, no records to train on, ...)
  {EXIT_USAGE}  bad command line
  {EXIT_INPUT}  an input is missing or unreadable (model, records, target, cost model)
  {EXIT_MISSING_TOOL}  a needed tool or device is absent (Graphviz's dot for --picture, the target's device for tune/bench)
"""

TARGET_HELP = ("cuda (sm_90), rocm (gfx90a), llvm, or a TVM target as JSON, e.g. "
               "'{\"kind\": \"rocm\", \"mcpu\": \"gfx942\"}'; other kinds (vulkan, c, ...) go through TVM's own pipeline")
SHORT_TARGETS = {"cuda": {"kind": "cuda", "arch": "sm_90"}, "rocm": {"kind": "rocm", "mcpu": "gfx90a"},
                 "llvm": {"kind": "llvm"}}


class CliError(Exception):
    """A user-facing failure: its message is printed as one line, `code` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_INPUT):
        super().__init__(message)
        self.code = code


def parse_target(text: str):
    """A tvm Target from a short name, a JSON object or a TVM target string."""
    import tvm  # pylint: disable=import-outside-toplevel

    spec: object = SHORT_TARGETS.get(text, text)
    if isinstance(spec, str) and spec.lstrip().startswith("{"):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as err:
            raise CliError(f"--target: not valid JSON ({err}): {text}") from err
    try:
        return tvm.target.Target(spec)
    except Exception as err:  # pylint: disable=broad-except  # TVM raises several kinds
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CliError(f"--target: TVM does not accept {text!r}: {first}") from err


class _WarningPrinter:
    """Python warnings as `warning: ...` lines, each message once (the region report and the
    build both warn about the same unsupported target)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ARG002
        if str(message) not in self.seen:
            self.seen.add(str(message))
            print(f"warning: {message}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    from . import commands  # pylint: disable=import-outside-toplevel

    parser = argparse.ArgumentParser(
        prog="intelligen-tvm", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="IntelliGen for Apache TVM: memory-intensive operators (softmax, norms, GELU, "
                    "transposes, reductions, ...) compiled through GIR; everything else stays with TVM.",
        epilog=EXIT_CODES)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (summary, add, _) in commands.COMMANDS.items():
        p = sub.add_parser(name, help=summary, description=summary, epilog=EXIT_CODES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from . import commands  # pylint: disable=import-outside-toplevel

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():   # the user sees every warning once, whatever the filters
        warnings.simplefilter("default")
        warnings.showwarning = _WarningPrinter()
        try:
            return commands.COMMANDS[args.command][2](args, argv) or EXIT_OK
        except CliError as err:
            print(f"intelligen-tvm {args.command}: error: {err}", file=sys.stderr)
            return err.code
        except KeyboardInterrupt:
            print(f"intelligen-tvm {args.command}: interrupted", file=sys.stderr)
            return 130
