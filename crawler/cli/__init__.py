"""The ``socialark`` command line: one click group, thin commands.

Commands live in ``crawler/cli/cmd_*.py`` modules; each exposes ``COMMANDS``, a list of click
commands, and is registered here. Storage commands import only ``storage/`` so they never start
a reactor.
"""

from __future__ import annotations

import importlib
import pkgutil

import click

from crawler import __version__
from crawler.cli.groups import export_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="socialark")
def main() -> None:
    """socialark: archive social platforms at risk of disappearing.

    Captures posts, pages and media into standards-compliant WARC files, indexes them in
    SQLite, mirrors them to object storage, and serves them for search and replay.

    \b
    Example:
        socialark crawl site https://example.org/ --max-pages 100
        socialark cdx https://example.org/ --match prefix
    """


def _register() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            for command in module.COMMANDS:
                main.add_command(command)
    main.add_command(export_group)


_register()
