"""Command-line interface: parses arguments, calls the library, prints, maps errors to exit codes.

Keep commands thin. Heavy libraries (llama_cpp, pymupdf) are imported by the library functions
that need them, never at module level here, so `localdigest --help` stays instant.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
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


@cli.command("render")
@click.argument("records", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-t",
    "--template",
    "fmt",
    default="txt",
    show_default=True,
    metavar="txt|md|html|json|PATH.j2",
    help="Built-in format, or the path of your own Jinja2 template.",
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="File to write (default: stdout)."
)
@click.option("--order", type=click.Choice(["date", "given"]), help="Newest first, or as given.")
@click.pass_context
def render_cmd(
    ctx: click.Context, records: tuple[Path, ...], fmt: str, output: Path | None, order: str | None
) -> None:
    """Re-render a digest from stored records (record files or directories); no model is loaded.

    \b
    Example:
      localdigest render out/records -t html -o digest.html
      localdigest render out/records -t my-digest.md.j2 --order given
    """
    from localdigest.render import load_records, render, write_text_atomic

    settings = settings_from(ctx, order=order)
    text = render(load_records(list(records)), fmt, settings=settings, order=settings.order)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_text_atomic(output, text)
        log.info("wrote %s", output)


@cli.command("eval")
@click.argument("records", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--reference",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also score a published digest page in the reference text format.",
)
def eval_cmd(records: tuple[Path, ...], reference: Path | None) -> None:
    """Score digests without a model: Japanese share, completeness, duplicates, restated
    questions, concrete details from the paper, unknown numbers, garbled terms.

    \b
    Example:
      localdigest eval out/records --reference ../shared/reference/weekly-digest-sample.txt
    """
    from localdigest import evaluate, render

    if not records and not reference:
        raise click.UsageError("give record files/directories, --reference FILE, or both")
    if records:
        click.echo(evaluate.format_table(evaluate.score_records(render.load_records(list(records)))))
    if reference:
        click.echo(f"\nreference: {reference}")
        text = reference.read_text(encoding="utf-8")
        click.echo(evaluate.format_table(evaluate.score_reference(text)))


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
