"""Scrapy-free storage library: WARC writing and repair, the SQLite index, CDX, mirror, WACZ.

Nothing in this package imports Scrapy or Twisted, so the storage commands of the CLI stay fast
and reactor-free and the library is usable on its own.
"""
