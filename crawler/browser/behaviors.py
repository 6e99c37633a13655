"""Page behaviors: make a rendered page load everything a reader could reach.

After the load event: site behavior scripts run, lazy images are forced, then the page is
scrolled step by step. Each step clicks the "load more" selectors, scrolls to the bottom, forces
newly added lazy images and waits for the network to go idle. It stops when the page height has
not grown (and nothing was clicked) for two steps, after ``scroll_limit`` steps, or at the
page's deadline. Scripts are plain JS files in ``behaviors/`` so they can be read and reused.
"""

from __future__ import annotations

import logging
import time
from functools import cache
from pathlib import Path
from typing import Any

from crawler.browser.config import BrowserConfig
from crawler.browser.network import PageNetwork

logger = logging.getLogger(__name__)

SCRIPTS = Path(__file__).with_name("behaviors")
MAX_IDLE_WAIT = 10.0  # never wait longer than this for one quiet period (long polls, streams)
STABLE_STEPS = 2


@cache
def script(name: str) -> str:
    return (SCRIPTS / f"{name}.js").read_text(encoding="utf-8")


async def run_behaviors(page: Any, net: PageNetwork, config: BrowserConfig, deadline: float) -> int:
    """Run the behaviors until the page stops growing; returns the number of scroll steps."""

    def left() -> float:
        return max(0.0, deadline - time.monotonic())

    for source in config.behavior_scripts:
        try:
            await page.evaluate(source)
        except Exception as exc:  # a site script failing must not lose the capture
            net.sink.stat("browser/behavior_script_errors")
            logger.warning("Behavior script failed on %s: %s", page.url, exc)
    await page.evaluate(script("lazy"))
    await net.wait_idle(config.idle_time, min(MAX_IDLE_WAIT, left()))
    height = int(await page.evaluate("() => document.documentElement.scrollHeight"))
    steps = stable = 0
    while steps < config.scroll_limit and left() > 0:
        clicked = 0
        if config.load_more:
            clicked = int(await page.evaluate(script("load_more"), list(config.load_more)))
        new_height = int(await page.evaluate(script("scroll")))
        await page.evaluate(script("lazy"))
        await net.wait_idle(config.idle_time, min(MAX_IDLE_WAIT, left()))
        new_height = max(new_height, int(await page.evaluate(
            "() => document.documentElement.scrollHeight")))
        steps += 1
        logger.debug("Scroll step %d on %s: height %d -> %d, clicked %d",
                     steps, page.url, height, new_height, clicked)
        if new_height <= height and not clicked:
            stable += 1
            if stable >= STABLE_STEPS:
                break
        else:
            stable = 0
        height = max(height, new_height)
    net.sink.stat("browser/scroll_steps", steps)
    return steps


async def extract_text(page: Any) -> dict[str, str]:
    data = await page.evaluate(script("extract"))
    return {"title": str(data.get("title") or ""), "text": str(data.get("text") or "")}
