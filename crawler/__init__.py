"""socialark crawler: Scrapy glue (capture, extensions, middlewares, pipelines) and the CLI."""

__version__ = "0.1.0"
