"""Thin shim so Beam's ``--setup_file ./setup.py`` can build and ship acir to remote workers.

All metadata lives in pyproject.toml; setuptools reads it from there.
"""
from setuptools import setup

setup()
