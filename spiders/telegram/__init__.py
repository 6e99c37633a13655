"""Telegram public channels (``t.me/s/NAME`` web preview): spider (navigation), parsers (pure)
and extractor (live + WARCs).

Kept free of Scrapy imports so ``spiders.telegram.extract`` loads without a crawler.
"""
