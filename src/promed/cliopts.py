"""Command-line options generated from config dataclasses: each option's default and help are its field's.

A command is a :class:`CommandSpec`: its config's default instance, the fields exposed as options (:class:`Opt`,
a dotted path into the nested config, e.g. ``"env.max_questions"``, with the option name the command line has
always used), options that are not settings (:class:`Extra`, e.g. ``--progress``) and the function that runs
it. :func:`build_command` turns a spec into a typer (click) command that

* shows every option with its field's ``metadata["help"]`` and the default instance's value as default;
* adds ``--config FILE.toml`` (:func:`promed.config.load_config`): the config is the default instance, overlaid
  with the file, overlaid with the options *given* on the command line (the click context's parameter source tells
  given from defaulted), so options win over the file and the file wins over the defaults;
* reports every input error (:class:`promed.errors.InputError`, raised by the validators, loaders and spec parsers;
  nothing else) as one ``error: ...`` line and exit code 2 (:func:`input_errors`), a model server's failure
  (:class:`promed.llm.base.ServerError`) as one ``error: ...`` line and exit code 3, and anything else, a bug, as
  ``error: internal error: ...`` and exit code 1 (:func:`command_errors`); ``promed --debug`` (or
  ``PROMED_DEBUG=1``) lets the last two through with their traceback. A reader that closes standard output early
  (``promed run --help | head``) ends the command quietly.

Fields that are not options (say ``SFTRunConfig.lora_r``) are set through ``--config``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import sys
import types
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Sequence, Union, get_args, get_origin, get_type_hints

import typer

from promed.config import get_path, load_config, with_paths
from promed.errors import InputError
from promed.llm.base import ServerError

INPUT_ERRORS: tuple[type[BaseException], ...] = (InputError,)

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_SERVER = 0, 1, 2, 3
EXIT_CODES_HELP = ("Exit codes: 0 ok; 1 internal error (a bug: rerun with --debug for the traceback); 2 bad input "
                   "(options, config file, data file, model spec); 3 model server failure (HTTP error, timeout, "
                   "refused connection or malformed reply, after the retries).")
DEBUG_ENV = "PROMED_DEBUG"
DEBUG_HELP = ("On a server failure or an internal error, raise it with its Python traceback instead of the "
              f"one-line message (also {DEBUG_ENV}=1).")

CONFIG_HELP = ("TOML file of settings for this command: its fields, or a [<command>] section (see configs/). "
               "Options given here win over the file.")


@contextmanager
def input_errors():
    """Turn input errors into a one-line message and exit code 2."""
    try:
        yield
    except INPUT_ERRORS as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_INPUT)


def _control_flow_exceptions() -> tuple[type[BaseException], ...]:
    """Exits, aborts and usage errors of typer (and of click, which older typer versions use)."""
    out: list[type[BaseException]] = [typer.Exit, typer.Abort]
    for module, name in (("typer.exceptions", "TyperException"), ("typer._click.exceptions", "ClickException"),
                         ("click.exceptions", "ClickException")):
        try:
            out.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(out)


def debug_enabled(ctx: typer.Context | None = None) -> bool:
    """``--debug`` given to ``promed`` (on ``ctx`` or a parent context), or ``PROMED_DEBUG`` set to anything but 0."""
    while ctx is not None:
        if ctx.params.get("debug"):
            return True
        ctx = ctx.parent
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


@contextmanager
def command_errors(debug: bool = False):
    """Around a whole command: a :class:`ServerError` -> one ``error: <message>`` line and exit code 3; any other
    unexpected exception -> ``error: internal error: <type>: <message> (...)`` and exit code 1. With ``debug`` both
    are re-raised (traceback). Exits, aborts and usage errors pass through untouched."""
    try:
        yield
    except _control_flow_exceptions():
        raise
    except BrokenPipeError:
        quiet_closed_stdout()
        raise typer.Exit(EXIT_OK)
    except ServerError as err:
        if debug:
            raise
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_SERVER)
    except Exception as err:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if debug:
            raise
        text = " ".join(str(err).split())
        text = text if len(text) <= 300 else text[:297] + "..."
        typer.echo(f"error: internal error: {type(err).__name__}: {text} (run with --debug for the traceback)",
                   err=True)
        raise typer.Exit(EXIT_INTERNAL)


def quiet_closed_stdout() -> None:
    """Standard output was closed by its reader (``| head``): point it at /dev/null so that the interpreter's final
    flush does not raise again (Python's documented recipe for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test runner's capture)
        pass


@dataclass(frozen=True)
class Opt:
    """An option bound to the config field at ``path``.

    ``decls``: the option's names (default ``--<field-name>``, and ``--<name>/--no-<name>`` for a bool; a single
    name for a bool makes an on-only flag such as ``--lora``). ``tuple[str, ...]`` fields are given as a comma
    list (``--doctor a,b``).
    """

    path: str
    decls: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return "opt_" + self.path.replace(".", "__")


@dataclass(frozen=True)
class Extra:
    """An option or argument that is not a setting; its value is passed to the command's ``run`` by ``name``."""

    name: str
    annotation: Any
    info: Any  # typer.Option(...) or typer.Argument(...)


@dataclass(frozen=True)
class CommandSpec:
    """One command: ``run(cfg, **extras)`` gets the resolved config and the :class:`Extra` values."""

    name: str
    help: str
    default: Callable[[], Any]
    items: tuple[Opt | Extra, ...]
    run: Callable[..., None]
    config_file: bool = True


def field_of(cfg: Any, path: str) -> tuple[dataclasses.Field, Any]:
    """The dataclass field at ``path`` in ``cfg`` and its resolved type."""
    parent_path, _, leaf = path.rpartition(".")
    parent = get_path(cfg, parent_path) if parent_path else cfg
    fields = {f.name: f for f in dataclasses.fields(parent)}
    if leaf not in fields:
        raise AttributeError(f"{type(parent).__name__} has no field {leaf!r} (option path {path!r})")
    return fields[leaf], get_type_hints(type(parent))[leaf]


def is_list(tp: Any) -> bool:
    return _strip_optional(tp)[0] is tuple


def cli_default(cfg: Any, opt: Opt) -> Any:
    """The option's default as the command line shows it (comma list for tuples)."""
    _, tp = field_of(cfg, opt.path)
    value = get_path(cfg, opt.path)
    return ",".join(value) if is_list(tp) and value is not None else value


def cli_value(cfg: Any, opt: Opt, value: Any) -> Any:
    """The field value of an option given on the command line."""
    _, tp = field_of(cfg, opt.path)
    if is_list(tp) and isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return value


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return (get_origin(args[0]) or args[0]), True
    return (get_origin(tp) or tp), False


def cli_type(tp: Any) -> Any:
    """The annotation typer parses the option with: Literal and tuple fields are strings, optionals stay optional."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return Optional[cli_type(args[0])]
    if get_origin(tp) in (Literal, tuple):
        return str
    return tp


def option_decls(opt: Opt, tp: Any) -> tuple[str, ...]:
    if opt.decls:
        return opt.decls
    flag = "--" + opt.path.rpartition(".")[2].replace("_", "-")
    return (f"{flag}/--no-{flag[2:]}",) if tp is bool else (flag,)


def parameters(spec: CommandSpec) -> list[inspect.Parameter]:
    """The typer parameters of ``spec``: options from fields (defaults and help from the default instance)."""
    base = spec.default()
    params = []
    for item in spec.items:
        if isinstance(item, Extra):
            params.append(inspect.Parameter(item.name, inspect.Parameter.KEYWORD_ONLY, default=item.info,
                                            annotation=item.annotation))
            continue
        fld, tp = field_of(base, item.path)
        help_text = fld.metadata.get("help")
        if not help_text:
            raise ValueError(f"{item.path}: the field has no metadata['help']")
        info = typer.Option(cli_default(base, item), *option_decls(item, tp), help=help_text)
        params.append(inspect.Parameter(item.name, inspect.Parameter.KEYWORD_ONLY, default=info,
                                        annotation=cli_type(tp)))
    if spec.config_file:
        params.append(inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY,
                                        default=typer.Option(None, "--config", help=CONFIG_HELP),
                                        annotation=Optional[Path]))
    return params


def resolve(spec: CommandSpec, values: dict[str, Any], given: set[str], config: Path | None,
            commands: Sequence[str] = ()) -> Any:
    """The command's config: defaults, then ``config`` (TOML), then the options in ``given`` (by parameter name)."""
    cfg = load_config(spec.default(), config, spec.name, commands)
    opts = [o for o in spec.items if isinstance(o, Opt) and o.name in given]
    cfg = with_paths(cfg, {o.path: cli_value(cfg, o, values[o.name]) for o in opts})
    check_given(cfg, {o.path for o in opts})
    return cfg


def check_given(cfg: Any, paths: set[str]) -> None:
    """Let every config in ``cfg`` (nested ones too) that has a ``check_given(fields)`` method refuse the options
    given on the command line (``paths``, dotted) that cannot apply to it, e.g. ``--initial`` for SynthClinic
    (:meth:`promed.data.sources.DataConfig.check_given`): an option is never ignored silently."""
    if hasattr(cfg, "check_given"):
        cfg.check_given({p for p in paths if "." not in p})
    for f in dataclasses.fields(cfg):
        sub = getattr(cfg, f.name)
        if dataclasses.is_dataclass(sub) and not isinstance(sub, type):
            check_given(sub, {p.partition(".")[2] for p in paths if p.startswith(f.name + ".")})


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the option ``name`` was given (command line or environment), not left at its default."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def build_command(spec: CommandSpec, commands: Sequence[str] = ()) -> Any:
    """The typer command of ``spec`` (``commands``: every command's name, for files with sections)."""
    params = parameters(spec)
    extras = [e.name for e in spec.items if isinstance(e, Extra)]

    def callback(ctx: typer.Context, **values: Any) -> None:
        given = {name for name in values if _given(ctx, name)}
        with command_errors(debug_enabled(ctx)):
            with input_errors():
                cfg = resolve(spec, values, given, values.get("config"), commands)
            spec.run(cfg, **{name: values[name] for name in extras})

    callback.__name__ = spec.name
    callback.__doc__ = spec.help
    ctx_param = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
    callback.__signature__ = inspect.Signature([ctx_param, *params])  # type: ignore[attr-defined]
    callback.__annotations__ = {"ctx": typer.Context, **{p.name: p.annotation for p in params}}
    sub = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    sub.command(spec.name, help=spec.help)(callback)
    return typer.main.get_command(sub)
