"""Command groups shared by several ``cmd_*`` modules (subcommands attach themselves here)."""

from __future__ import annotations

import click


@click.group("export")
def export_group() -> None:
    """Export captures, posts, CDXJ or a WACZ package from the index."""
