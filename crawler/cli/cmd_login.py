"""``socialark login URL --profile NAME``: log in by hand in a visible Chromium, keep the login."""

from __future__ import annotations

import time
from pathlib import Path

import click

from crawler.cli.common import data_dir_option
from crawler.cli.crawl_options import DurationType


@click.command("login")
@click.argument("url")
@click.option("--profile", required=True, metavar="NAME",
              help="Name to save the login under (DATA_DIR/profiles/NAME.json, mode 0600).")
@click.option("--until-cookie", metavar="COOKIE", default=None,
              help="Save as soon as the browser holds this cookie (e.g. auth_token for X, "
                   "c_user for Facebook) instead of waiting for Enter.")
@click.option("--timeout", type=DurationType(), default="15m", show_default=True,
              help="Give up after this long.")
@click.option("--headless", is_flag=True, hidden=True,
              help="No window (for tests and scripted logins).")
@data_dir_option
def login_cmd(url: str, profile: str, until_cookie: str | None, timeout: float, headless: bool,
              data_dir: Path) -> None:
    """Open Chromium at URL, let you log in by hand, and save the browser's login.

    Log in in the window that opens, then press Enter here (or give --until-cookie to finish
    by itself). The cookies and local storage are saved under the data dir, readable by you
    only, and used by `socialark crawl … --profile NAME`. They are never written to a WARC.

    \b
    Example:
        socialark login https://x.com/i/flow/login --profile x-archivist --until-cookie auth_token
        socialark crawl x --user jack --profile x-archivist
    """
    from crawler.browser.config import LAUNCH_ARGS, browser_problem, default_executable
    from crawler.profiles import ProfileError, profile_path, save_state

    try:
        path = profile_path(data_dir, profile)
    except ProfileError as exc:
        raise click.BadParameter(str(exc), param_hint="--profile") from exc
    problem = browser_problem(None)
    if problem:
        raise click.UsageError(problem)
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=default_executable(), headless=headless,
                                     args=list(LAUNCH_ARGS))
        context = browser.new_context(storage_state=str(path) if path.exists() else None)
        page = context.new_page()
        try:
            page.goto(url, wait_until="domcontentloaded")
        except PlaywrightError as exc:
            browser.close()
            raise click.ClickException(f"cannot open {url}: {str(exc).splitlines()[0]}") from exc
        deadline = time.monotonic() + timeout
        if until_cookie:
            click.echo(f"Log in in the browser window; waiting for cookie {until_cookie!r}…",
                       err=True)
            while not any(c["name"] == until_cookie for c in context.cookies()):
                if time.monotonic() > deadline:
                    browser.close()
                    raise click.ClickException(f"no {until_cookie!r} cookie after "
                                               f"{timeout:.0f}s: not logged in, nothing saved")
                page.wait_for_timeout(250)
        else:
            click.prompt("Log in in the browser window, then press Enter here", default="",
                         show_default=False, err=True)
        state = context.storage_state()
        browser.close()
    save_state(path, dict(state))
    click.echo(f"saved login {profile!r} ({len(state.get('cookies', []))} cookies) to {path}; "
               f"use --profile {profile}", err=True)


COMMANDS = [login_cmd]
