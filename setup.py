"""Build shim for ``scrapyd-deploy``, which packs the project with ``python setup.py bdist_egg``.

All metadata (name, version, packages, package data, the ``scrapy`` settings entry point)
lives in pyproject.toml; without this file scrapyd-deploy would write its own ``setup.py``
with a made-up name and no package data.
"""

from setuptools import setup

setup()
