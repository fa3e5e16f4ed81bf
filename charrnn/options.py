"""CLI options derived from the config dataclasses, so each setting is declared once (in charrnn.config).

`command(app, Bundle(...), ...)` turns the fields of the named dataclasses into typer parameters: the
field's type, its default (shown in --help), its help text and panel, and its flags from `setting(...)`
metadata. It builds the command function's signature at run time (inspect.Signature with
Annotated[type, typer.Option(...)] per field), so typer parses them as if they were written out by hand.
The command then receives an `Options` mapping that builds the dataclasses from what was parsed.
The same declarations give the flag of each field (for error messages), the fuzz test's option lists and
the option tables of docs/options.md (`python -m charrnn.options > docs/options.md`).
"""

from __future__ import annotations

import inspect
import re
import sys
import typing
from collections.abc import Callable, Iterator
from dataclasses import MISSING, Field, dataclass, fields
from typing import Annotated, Any

import typer

from charrnn import config


@dataclass(frozen=True)
class Bundle:
    """The fields of `cls` a command offers; given_only: the option defaults to None (not given), so the
    library can tell an explicit value from the field's default (`train --resume` keeps saved settings)."""

    cls: type
    only: tuple[str, ...] = ()
    given_only: bool = False

    def fields(self) -> Iterator[Field]:
        for f in fields(self.cls):
            if f.metadata.get("cli", True) is not False and (not self.only or f.name in self.only):
                yield f


def flags(f: Field) -> tuple[str, ...]:
    """The option names of a field: its declared flags, or --field-name."""
    return f.metadata.get("flags") or ("--" + f.name.replace("_", "-"),)


def _default(f: Field) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def shown_default(f: Field) -> str | None:
    """The default as --help words it: the declared words, else the field's value; None: say nothing."""
    shown = f.metadata.get("shown")
    if shown is not None:
        return shown or None
    value = _default(f)
    if value is MISSING or value is None:
        return None
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def _parameter(f: Field, hint: Any, given_only: bool) -> inspect.Parameter:
    meta = f.metadata
    parse = config.PARSERS.get(meta.get("parse", ""))
    kind = str if parse else hint
    default = _default(f)
    if given_only or "cli_default" in meta:
        default = meta.get("cli_default")
        if default is None:
            kind = kind | None
    shown = shown_default(f)
    help_ = meta["help"] + (f" \\[default: {shown}]" if shown else "")
    if meta.get("argument"):
        info = typer.Argument(help=help_, metavar=meta.get("metavar"), show_default=False)
    else:
        info = typer.Option(*meta["flags"], help=help_, rich_help_panel=meta["panel"], show_default=False, parser=parse)
    if meta.get("required") or default is MISSING:
        default = inspect.Parameter.empty
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, info])


def parameters(*bundles: Bundle) -> list[inspect.Parameter]:
    """The typer parameters of the bundles' fields, arguments first."""
    params = []
    for bundle in bundles:
        hints = typing.get_type_hints(bundle.cls)
        params += [_parameter(f, hints[f.name], bundle.given_only) for f in bundle.fields()]
    names = [p.name for p in params]
    assert len(names) == len(set(names)), f"a field is offered twice: {names}"
    return sorted(params, key=lambda p: not _is_argument(p))


def _is_argument(p: inspect.Parameter) -> bool:
    return isinstance(typing.get_args(p.annotation)[1], typer.models.ArgumentInfo)


class Options(dict):
    """What one command parsed, by field name."""

    def given(self, cls: type) -> dict[str, Any]:
        """The options of cls's fields that were given (not None)."""
        return {f.name: self[f.name] for f in Bundle(cls).fields() if self.get(f.name) is not None}

    def make(self, cls: Any, **extra: Any) -> Any:
        """cls built from the parsed values of its options, plus extra."""
        return cls(**{f.name: self[f.name] for f in Bundle(cls).fields() if f.name in self} | extra)


def command(app: typer.Typer, *bundles: Bundle, name: str | None = None) -> Callable:
    """Register fn(options: Options) as a command whose parameters are the bundles' fields."""

    def register(fn: Callable[[Options], None]) -> Callable[[Options], None]:
        params = parameters(*bundles)

        def run(**values: Any) -> None:
            fn(Options(values))

        run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params}
        run.__doc__, run.__name__ = fn.__doc__, fn.__name__
        app.command(name)(run)
        return fn

    return register


# -- the same declarations, read back -------------------------------------------------------------

# The option bundles of each command, in the order --help lists them.
TRAIN = (
    Bundle(config.DataConfig, given_only=True),
    Bundle(config.ModelConfig, given_only=True),
    Bundle(config.TrainConfig, given_only=True),
    Bundle(config.RunOptions),
)
SAMPLE = (
    Bundle(config.Shared, ("checkpoint", "step")),
    Bundle(config.SampleConfig),
    Bundle(config.SampleOutput),
    Bundle(config.Shared, ("device",)),
    Bundle(config.Shared, ("encoding",)),
)
EVAL = (Bundle(config.EvalConfig), Bundle(config.Shared))
COMMANDS: dict[str, tuple[Bundle, ...]] = {
    "train": TRAIN,
    "sample": SAMPLE,
    "eval": EVAL,
    "demo": (Bundle(config.DemoConfig),),
    "plot": (Bundle(config.PlotConfig),),
    "novelty": (Bundle(config.NoveltyConfig), Bundle(config.Shared, ("json", "encoding"))),
    "gradflow": (Bundle(config.GradflowConfig), Bundle(config.Shared, ("device",))),
    "info": (Bundle(config.InfoConfig),),
    "export": (Bundle(config.ExportConfig),),
    "timelapse": (Bundle(config.TimelapseConfig),),
    "serve": (Bundle(config.ServeConfig), Bundle(config.Shared, ("device",))),
    "score": (Bundle(config.ScoreConfig), Bundle(config.Shared, ("checkpoint", "step", "device", "encoding"))),
}


def option_fields(command: str) -> list[Field]:
    """The fields a command offers as options (arguments left out)."""
    return [f for b in COMMANDS[command] for f in b.fields() if not f.metadata.get("argument")]


def flag_of(name: str) -> str:
    """The flag of a field name, for rendering the library's errors (first declaration wins)."""
    for bundles in COMMANDS.values():
        for f in (f for b in bundles for f in b.fields()):
            if f.name == name:
                return flags(f)[0]
    return name


def render(message: str, names: tuple[str, ...]) -> str:
    """A library message with the field names it mentions shown as their flags."""
    for name in names:
        message = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flag_of(name), message)
    return message


def markdown(command: str) -> str:
    """The option table of a command, as docs/options.md shows it."""
    rows = ["| option | default | meaning |", "| --- | --- | --- |"]
    for f in option_fields(command):
        names = ", ".join(f"`{n}`" for n in flags(f))
        shown = shown_default(f)
        text = f.metadata["help"].replace("|", "\\|")
        rows.append(f"| {names} | {f'`{shown}`' if shown else ''} | {text} |")
    return "\n".join(rows)


def reference() -> str:
    """docs/options.md: every command's options, generated from the declarations."""
    parts = [
        "# Options of every command\n",
        "Generated from the settings declared in `charrnn/config.py` (`python -m charrnn.options > docs/options.md`);",
        "a test checks that this file is up to date. `charrnn COMMAND --help` shows the same.\n",
    ]
    for command in COMMANDS:
        if option_fields(command):
            parts += [f"## `charrnn {command}`\n", markdown(command) + "\n"]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(reference())
