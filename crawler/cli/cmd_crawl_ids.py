"""``socialark crawl ids``: emergency ID enumeration."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from crawler.cli.cmd_crawl import crawl
from crawler.cli.crawl_options import crawl_options, execute, options_from_kwargs, wrap_crawl_errors


def _parse_range(text: str, fmt: str, step: int = 1) -> tuple[int, int]:
    base = 16 if fmt == "hex" else 10
    m = re.fullmatch(r"\s*([0-9a-fA-F]{1,40})\s*-\s*([0-9a-fA-F]{1,40})\s*", text)
    if not m:
        raise click.BadParameter(f"expected START-END, got {text[:60]!r}", param_hint="--range")
    try:
        start, end = int(m.group(1), base), int(m.group(2), base)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not a {fmt} range", param_hint="--range") from exc
    if step == 0:
        raise click.BadParameter("must not be 0", param_hint="--step")
    if (end - start) * step < 0:
        raise click.BadParameter(
            f"{text!r} holds no id with --step {step} (use {m.group(2)}-{m.group(1)}, or a "
            f"{'positive' if step < 0 else 'negative'} --step)", param_hint="--range")
    return start, end


@crawl.command("ids")
@click.option("--url-template", metavar="URL",
              help="Item URL with {id} where the id goes, e.g. https://host/post/{id}.")
@click.option("--range", "id_range", metavar="START-END", help="Inclusive id range (in --format).")
@click.option("--step", type=int, default=1, show_default=True, help="Id increment (may be negative).")
@click.option("--format", "id_format", type=click.Choice(["dec", "hex"]), default="dec",
              show_default=True, help="How ids are written in URLs.")
@click.option("--ids-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Take ids from a file, one per line, instead of --range.")
@click.option("--parser", metavar="PLATFORM",
              help="Extract posts from hits with this platform's parser (e.g. mastodon).")
@click.option("--spec", metavar="NAME|FILE",
              help="Platform spec (TOML, docs/specs.md): a built-in name such as parler-2021, "
                   "or a file. Replaces --url-template, --format and --parser.")
@click.option("--var", "spec_vars", metavar="KEY=VALUE", multiple=True,
              help="Override a variable of the spec, e.g. --var api=http://127.0.0.2:8080 "
                   "(repeatable).")
@crawl_options
@wrap_crawl_errors
def crawl_ids(url_template: str | None, id_range: str | None, step: int, id_format: str,
              ids_file: Path | None, parser: str | None, spec: str | None,
              spec_vars: tuple[str, ...], **kwargs: Any) -> None:
    """Enumerate item URLs from an id range (the approach that saved Parler).

    Every id becomes one request; 2xx responses are hits, 404/410 misses (expected and cheap);
    everything fetched is archived. Per-host politeness and rate limits apply as in any crawl.
    The enumeration is resumable: --resume continues from where it stopped.

    \b
    Example:
        socialark crawl ids --url-template 'https://host/post/{id}' --range 1000-250000
        socialark crawl ids --url-template 'https://host/p/{id}' --range 0-fffff --format hex
        socialark crawl ids --url-template 'https://host/post/{id}' --ids-file ids.txt --resume
        socialark crawl ids --spec parler-2021 --range 1-100000 --mirror s3://bucket/parler
        socialark crawl ids --spec ./myplatform.toml --var api=https://api.example --range 1-500
    """
    from crawler.extraction import load_extractors
    from crawler.scope import validate_seeds

    options = options_from_kwargs(kwargs)
    if spec_vars and not spec:
        raise click.UsageError("--var needs --spec")
    if spec:
        _crawl_spec(spec, spec_vars, id_range, step, ids_file, url_template, parser, options)
        return
    if options.resume and not url_template:
        execute("ids", {}, options)  # continue the saved enumeration as it was configured
        return
    if not url_template:
        raise click.UsageError("give --url-template (or --resume)")
    if "{id}" not in url_template:
        raise click.UsageError("--url-template must contain {id}")
    validate_seeds([url_template.replace("{id}", "0")])
    if step == 0:
        raise click.UsageError("--step must not be 0")
    if parser and parser not in {e.platform for e in load_extractors()}:
        known = ", ".join(sorted({e.platform for e in load_extractors()})) or "none installed"
        raise click.UsageError(f"unknown --parser {parser!r} (available: {known})")
    spider_kwargs: dict[str, Any] = {"url_template": url_template, "step": step,
                                     "id_format": id_format, "parser": parser}
    if ids_file:
        spider_kwargs["ids"] = [ln.strip() for ln in ids_file.read_text().splitlines() if ln.strip()]
    elif id_range:
        spider_kwargs["start"], spider_kwargs["end"] = _parse_range(id_range, id_format, step)
    elif not options.resume:
        raise click.UsageError("give --range START-END or --ids-file FILE")
    execute("ids", spider_kwargs, options)


class SpecProblem(click.ClickException):
    """A spec that cannot be used: ``Error: spec FILE: KEY: PROBLEM``, exit 2, no usage text."""

    exit_code = 2


def _crawl_spec(spec_arg: str, spec_vars: tuple[str, ...], id_range: str | None, step: int,
                ids_file: Path | None, url_template: str | None, parser: str | None,
                options: Any) -> None:
    """``crawl ids --spec``: the spec is loaded and checked here, then travels whole in the
    spider's arguments (crawls.config, the Redis registry), so workers and ``index --rebuild``
    use exactly this spec, even if the file changes later."""
    from crawler.errors import CrawlConfigError
    from crawler.scope import validate_seeds
    from crawler.spec.model import load_spec, parse_vars

    if url_template or parser:
        raise click.UsageError("--spec replaces --url-template and --parser: give only --spec")
    try:
        spec = load_spec(spec_arg, parse_vars(list(spec_vars)))
    except CrawlConfigError as exc:  # SpecError too: one line naming file, key and problem
        raise SpecProblem(str(exc)) from None
    overrides = parse_vars(list(spec_vars))
    first = spec.lookup.url if spec.lookup else (spec.api[0] if spec.api else spec.page or "")
    validate_seeds([spec.expand(first, id="0", key="0")])
    spider_kwargs: dict[str, Any] = {
        "spec_text": spec.text, "spec_name": spec.source,
        "spec_vars": [f"{k}={v}" for k, v in sorted(overrides.items())],
        "step": step, "id_format": spec.id_format, "url_template": "{id}",
    }
    if ids_file:
        spider_kwargs["ids"] = [ln.strip() for ln in ids_file.read_text().splitlines() if ln.strip()]
    elif id_range:
        spider_kwargs["start"], spider_kwargs["end"] = _parse_range(id_range, spec.id_format, step)
    elif not options.resume:
        raise click.UsageError("give --range START-END or --ids-file FILE")
    execute("ids", spider_kwargs, options)


COMMANDS: list[click.Command] = []
