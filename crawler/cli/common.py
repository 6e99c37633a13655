"""Shared CLI plumbing: the data-dir option, exit codes, and turning errors into messages."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from crawler.errors import ExitCode
from storage._s3 import endpoint_problem
from storage.errors import StorageError

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DATA_DIR = "./archive"


def data_dir_option(func: F) -> F:
    """``--data-dir DIR`` (default ``./archive``, env ``SOCIALARK_DATA_DIR``)."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: os.environ.get("SOCIALARK_DATA_DIR", DEFAULT_DATA_DIR),
        show_default=DEFAULT_DATA_DIR,
        help="Archive directory (index.db, warcs/, state/). Env: SOCIALARK_DATA_DIR.",
    )(func)


def index_path(data_dir: Path) -> Path:
    return Path(data_dir) / "index.db"


def friendly_errors(func: F) -> F:
    """Turn library errors a user can act on into a one-line message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except StorageError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


# click's ClickException exits with 1; our contract says usage/config errors exit with 2.
click.ClickException.exit_code = ExitCode.USAGE


def check_collection_option(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Click callback: every ``--collection`` follows the one collection-name rule."""
    from storage.names import CollectionNameError, check_collection

    values = value if isinstance(value, tuple) else (value,)
    for item in values:
        if item is None:
            continue
        try:
            check_collection(item)
        except CollectionNameError as exc:
            raise click.BadParameter(str(exc).removeprefix("invalid collection name "),
                                     ctx=ctx, param=param) from None
    return value


def check_mirror_option(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Click callback: ``--mirror`` must be ``s3://BUCKET[/PREFIX]`` before anything starts."""
    if value is None:
        return value
    from storage._s3 import S3Target

    try:
        S3Target.parse(value)
    except StorageError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


def check_endpoint_option(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Click callback: ``--endpoint-url`` must be an http(s) URL with a host."""
    if value is None:
        return value
    problem = endpoint_problem(value)
    if problem:
        raise click.BadParameter(problem, ctx=ctx, param=param)
    return value


