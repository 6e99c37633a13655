"""``socialark keys create``: an ECDSA P-384 signing key for manifests and WACZ packages."""

from __future__ import annotations

from pathlib import Path

import click

from crawler.cli.common import check_collection_option, data_dir_option, friendly_errors
from storage.signing import create_key, default_key_path, public_path


@click.group("keys")
def keys_group() -> None:
    """Signing keys for manifests (`crawl --sign-key`) and WACZ exports (`export wacz --sign`)."""


@keys_group.command("create")
@data_dir_option
@click.option("--collection", callback=check_collection_option, default="default", show_default=True,
              help="Make the default key of this collection (used by its crawls unless "
                   "--sign-key says otherwise).")
@click.option("--path", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the key here instead [default: <data-dir>/keys/<collection>.pem].")
@friendly_errors
def keys_create(data_dir: Path, collection: str, path: Path | None) -> None:
    """Create an ECDSA P-384 key, as ArchiveWeb.page and ReplayWeb.page use for WACZ signing.

    The private key (PKCS#8 PEM) is written with mode 0600 and never replaced; the public key
    (base64 DER, the form a signed WACZ's `publicKey` takes) is printed and written beside it
    as `<path>.pub`. Hand the public key to whoever will verify the archive.

    \b
    Example:
        socialark keys create --collection news
        socialark keys create --path ~/keys/newsroom.pem
    """
    path = path or default_key_path(data_dir, collection)
    key = create_key(path)
    click.echo(f"Wrote {path} (private, mode 0600) and {public_path(path)}", err=True)
    click.echo(key.public_b64)


COMMANDS: list[click.Command] = [keys_group]
