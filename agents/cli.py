"""The one command-line mechanism of every entry point and benchmark: a dataclass of fields with help lines.

    @dataclass
    class Args:
        \"\"\"What the command does (the first line becomes the description).\"\"\"

        tasks: str = arg("validation", "bundled split name, GAIA folder or task JSONL")
        envs: list[int] = arg([1, 2, 4, 8], "parallel envs to measure")
        resume: bool = arg(False, "continue a killed run")

    args = parse(Args)            # sys.argv[1:]; --help lists every field with its help line and default

Rules: a field named ``output_dir`` is the flag ``--output_dir`` (names are kept as written, so documented
commands never change); ``bool`` fields are ``--name`` (or ``--name true|false``) and ``--no_name``;
``list[T]`` fields take one or more values (``--envs 1 2 4``); ``choices`` restricts a value. Every field
must carry a help line: :func:`parse` refuses a dataclass with a field made without :func:`arg`. A
command may take free arguments after ``--`` (``extra=True``): they come back as the second value.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def arg(default: Any, help: str, choices: Sequence[Any] | None = None) -> Any:  # noqa: A002 - argparse's name
    """A dataclass field with a help line (and optional choices) for the command line."""
    metadata = {"help": help, "choices": tuple(choices) if choices else None}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _to_bool(text: str) -> bool:
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser(cls: type, description: str | None = None) -> argparse.ArgumentParser:
    """An ``argparse`` parser with one flag per field of the dataclass ``cls`` (see the module docstring)."""
    doc = (description or cls.__doc__ or "").strip()
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] or None,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            raise TypeError(f"{cls.__name__}.{f.name}: every command-line field needs a help line (use agents.cli.arg)")
        kind = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        options: dict[str, Any] = {"help": f.metadata["help"], "default": default, "dest": f.name}
        if kind is bool:
            parser.add_argument(f"--{f.name}", type=_to_bool, nargs="?", const=True, **options)
            parser.add_argument(f"--no_{f.name}", action="store_false", dest=f.name,
                                help=argparse.SUPPRESS)
            continue
        origin = typing.get_origin(kind)
        if origin in (list, tuple):
            (item,) = set(typing.get_args(kind)) - {Ellipsis}
            options.update(type=item, nargs="+")
        elif origin in (typing.Union, types.UnionType):  # `int | None`: the value's type
            inner = [a for a in typing.get_args(kind) if a is not type(None)]
            options["type"] = inner[0]
        else:
            options["type"] = kind
        if f.metadata.get("choices"):
            options["choices"] = f.metadata["choices"]
        parser.add_argument(f"--{f.name}", **options)
    return parser


def parse(cls: type[T], argv: Sequence[str] | None = None, *, description: str | None = None) -> T:
    """Parse ``argv`` (default ``sys.argv[1:]``) into an instance of the dataclass ``cls``."""
    namespace = build_parser(cls, description).parse_args(None if argv is None else list(argv))
    return cls(**vars(namespace))


def parse_with_extra(cls: type[T], argv: Sequence[str] | None = None, *,
                     description: str | None = None) -> tuple[T, list[str]]:
    """Like :func:`parse`, and also return the arguments after a ``--`` (passed through to a sub-command)."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    return parse(cls, argv, description=description), extra


def as_argv(args: Any) -> list[str]:
    """The command line that :func:`parse` turns back into ``args`` (for subprocess runs of an entry point)."""
    argv: list[str] = []
    for f in dataclasses.fields(args):
        value = getattr(args, f.name)
        if isinstance(value, bool):
            argv += [f"--{f.name}", "true" if value else "false"]
        elif isinstance(value, (list, tuple)):
            argv += [f"--{f.name}", *map(str, value)] if value else []
        else:
            argv += [f"--{f.name}", str(value)]
    return argv
