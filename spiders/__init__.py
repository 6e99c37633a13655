"""Spiders, one module or package per platform (``SPIDER_MODULES = ["spiders"]``).

Scrapy's spider loader finds a spider by its ``name``; platform packages also register
themselves in ``crawler/platforms.py`` through their ``platform.py`` (docs/platforms.md).
"""
