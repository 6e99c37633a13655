"""Datasette plugins bundled with socialark, loaded by ``socialark browse`` via ``--plugins-dir``.

Datasette imports every ``*.py`` file of this directory as a plugin (this one defines no hooks).
"""
