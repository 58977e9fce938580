"""Command-line interface: parses arguments, calls the library, prints, maps errors to exit codes.

Keep commands thin. Heavy libraries (llama_cpp, pymupdf) are imported by the library functions
that need them, never at module level here, so `localdigest --help` stays instant.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from localdigest import __version__
from localdigest.config import Settings, load_settings
from localdigest.errors import LocaldigestError

log = logging.getLogger("localdigest")


def _debug() -> bool:
    return os.environ.get("LOCALDIGEST_DEBUG", "") not in {"", "0"}


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def settings_from(ctx: click.Context, **flags: Any) -> Settings:
    """The effective settings for a command: the group's loaded settings plus its own flags."""
    base: Settings = ctx.find_root().obj["settings"]
    return base.with_flags(**flags)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="localdigest")
@click.option("-v", "--verbose", count=True, help="More detail on stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr (for cron).")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Japanese digests of research-paper PDFs with a local model, entirely offline.

    \b
    Example:
      localdigest models install default
      localdigest digest papers/ -o out/
    """
    _setup_logging(verbose, quiet)
    ctx.ensure_object(dict)
    ctx.obj["settings"] = load_settings()
    ctx.obj["quiet"] = quiet
    ctx.obj["verbose"] = verbose


@cli.command("config")
@click.pass_context
def config_cmd(ctx: click.Context) -> None:
    """Print the effective settings and where each came from.

    Precedence: command-line flag > LOCALDIGEST_* environment > localdigest.toml
    (working directory, then user config directory) > built-in default.
    """
    settings = settings_from(ctx)
    rows = settings.explain()
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        click.echo(f"{name:<{width}}  {value!r}  ({source})")


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors on stderr; exit 1 for runtime failures, 2 for bad usage."""
    try:
        cli.main(args=argv, prog_name="localdigest", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("localdigest: interrupted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "localdigest"
        click.echo(f"localdigest: error: {exc.format_message()} (try '{command} --help')", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"localdigest: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except LocaldigestError as exc:
        if _debug():
            raise
        click.echo(f"localdigest: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("localdigest: interrupted", err=True)
        sys.exit(130)
