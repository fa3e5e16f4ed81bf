"""Dump every option of every charrnn command: names, effective default, is_flag, multiple.

The recorded list (tests/data/cli_options.json, made from a0cd22a) pins today's options; tests/test_options.py
checks the generated options against it. Regenerate with: python -m tests.options_dump > tests/data/cli_options.json
"""

from __future__ import annotations

import dataclasses
import json

import typer

from charrnn.cli import app
from charrnn.config import DataConfig, ModelConfig, SampleConfig, TrainConfig

# Options whose typer default is None (given = override) take their effective value from a config field.
_FIELD_NAME = {"model": "cell"}  # a0cd22a named the --model parameter `model`; the field is `cell`
_CONFIGS = {"train": (DataConfig, ModelConfig, TrainConfig), "sample": (SampleConfig,)}
# Effective defaults that live in code rather than in one field (documented in --help).
_IN_CODE = {
    ("train", "epochs"): 10.0,
    ("train", "nproc"): 1,
    ("train", "tie_weights"): False,
    ("train", "compile"): False,
    ("train", "tensorboard"): False,
    ("gradflow", "forget_bias"): [0.0, 1.0],
}


def _effective(command: str, name: str, default: object) -> object:
    """The value the program uses when the option is not given."""
    if default is not None:
        return default
    if (command, name) in _IN_CODE:
        return _IN_CODE[command, name]
    for cls in _CONFIGS.get(command, ()):
        f = cls.__dataclass_fields__.get(_FIELD_NAME.get(name, name))
        if f is not None:
            return f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    return None


def _plain(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def options() -> dict[str, dict[str, dict[str, object]]]:
    root = typer.main.get_command(app)
    out: dict[str, dict[str, dict[str, object]]] = {}
    for name, command in sorted(root.commands.items()):
        out[name] = {}
        for param in command.params:
            if param.param_type_name != "option" or param.name == "help":
                continue
            default = param.default() if callable(param.default) else param.default
            key = min((o for o in param.opts if o.startswith("--")), default=param.opts[0])
            out[name][key] = {
                "names": sorted(param.opts),
                "secondary": sorted(param.secondary_opts),
                "default": _plain(_effective(name, param.name, default)),
                "is_flag": bool(param.is_flag),
                "multiple": bool(param.multiple),
            }
    return out


if __name__ == "__main__":
    print(json.dumps(options(), indent=1, sort_keys=True))
