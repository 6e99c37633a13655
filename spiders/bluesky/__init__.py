"""Bluesky / AT Protocol: spider (navigation), parsers (pure) and extractor (live + WARCs).

Kept free of Scrapy imports so ``spiders.bluesky.extract`` loads without a crawler.
"""
