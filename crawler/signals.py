"""Signals socialark components send (documented, like Scrapy's own).

``warc_file_closed``
    Sent by the WARC extension right after a WARC file was fsynced, renamed from ``.open`` to its
    final name and recorded in ``warc_files`` (size, sha256, state ``closed``). Keyword arguments:
    ``path`` (Path, final location), ``name`` (str, basename), ``collection`` (str),
    ``size`` (int), ``sha256`` (str, hex). Handlers must not block: the mirror extension hands the
    file to a background thread.

``warc_record_written``
    Sent for every response/revisit/resource record written. Keyword arguments: ``row`` (dict,
    the ``captures`` row for the record).
"""

warc_file_closed = object()
warc_record_written = object()
