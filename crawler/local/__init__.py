"""``crawl --processes N``: N local crawl processes on one shared frontier, nothing to install.

See docs/scaling.md ("Every core on one machine") for the design and why it was chosen.
"""
