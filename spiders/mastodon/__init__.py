"""Mastodon and its forks (Truth Social, Gab, Pleroma/Akkoma): spider, parsers, extractor.

``parsers`` and ``extract`` are pure (no Scrapy) so ``socialark index --rebuild`` can run them on
old WARCs; ``spider`` holds the navigation (PLATFORMS.md §2).
"""
