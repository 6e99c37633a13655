"""Discourse forums: spider (navigation), parsers (pure) and extractor (live + WARCs).

Kept free of Scrapy imports so ``spiders.discourse.extract`` loads without a crawler.
"""
