"""Built-in platform specs, resolvable by name (``--spec parler-2021``)."""
