"""Reddit (public ``.json`` endpoints): spider (navigation), parsers (pure) and extractor.

Kept free of Scrapy imports so ``spiders.reddit.extract`` loads without a crawler.
"""
