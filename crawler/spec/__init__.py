"""Platform spec files for ``crawl ids --spec`` (docs/specs.md): model, JSON paths, extraction."""
