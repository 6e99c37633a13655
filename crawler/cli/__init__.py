"""The ``socialark`` command line: one click group, thin commands.

Commands live in ``crawler/cli/cmd_*.py`` modules; each exposes ``COMMANDS``, a list of click
commands, and is registered here. Storage commands import only ``storage/`` so they never start
a reactor.

Command modules are imported on demand (``LazyGroup``): ``socialark index`` imports
``cmd_index`` only, not the crawl commands (Scrapy, Twisted, Playwright), which keeps start-up
short. Command ``X`` is looked for in ``cmd_X`` and ``cmd_X_*`` (subcommands attaching
themselves to the ``X`` group), then in ``EXTRA_MODULES``; a name found nowhere loads every
module, so a new ``cmd_*`` module works without being listed anywhere.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import MutableMapping
from typing import Any

import click

from crawler import __version__

# Commands whose module is not named after them.
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "serve": ("cmd_cdx",),
    "crawl-status": ("cmd_worker",),
    "crawl-stop": ("cmd_worker",),
}


class LazyGroup(click.Group):
    """A click group whose ``cmd_*`` modules are imported when a command is first asked for
    (``commands``, ``list_commands``: all of them; ``get_command``: the ones that can hold it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loaded: set[str] = set()
        self._all_loaded = False
        super().__init__(*args, **kwargs)

    # click.Group keeps its commands in ``self.commands``; reading it means "all commands".
    @property  # type: ignore[override]
    def commands(self) -> MutableMapping[str, click.Command]:
        self._load_all()
        return self._commands

    @commands.setter
    def commands(self, value: MutableMapping[str, click.Command]) -> None:
        self._commands = value

    def _module_names(self) -> list[str]:
        return sorted(i.name for i in pkgutil.iter_modules(__path__) if i.name.startswith("cmd_"))

    def _load(self, module_name: str) -> None:
        if module_name in self._loaded:
            return
        self._loaded.add(module_name)
        module = importlib.import_module(f"{__name__}.{module_name}")
        for command in module.COMMANDS:
            self._commands[command.name or module_name] = command
        if module_name.startswith("cmd_export"):
            from crawler.cli.groups import export_group

            self._commands[export_group.name or "export"] = export_group

    def _load_all(self) -> None:
        if not self._all_loaded:
            self._all_loaded = True
            for name in self._module_names():
                self._load(name)

    def _load_for(self, cmd_name: str) -> None:
        stem = "cmd_" + cmd_name.replace("-", "_")
        for name in self._module_names():
            if name == stem or name.startswith(stem + "_"):
                self._load(name)
        for name in EXTRA_MODULES.get(cmd_name, ()):
            self._load(name)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self._commands:
            self._load_for(cmd_name)
        if cmd_name not in self._commands:
            self._load_all()
        return self._commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
