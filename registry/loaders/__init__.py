"""Registered on-disk formats, one module each: a ``@register_loader`` class with
``name = "..."``, found by name without importing it (:data:`LOADERS`); ``LOADERS.get(name)``
imports the one module that holds it. A new format is one new module here; see
docs/contributing.md."""

from registry.loaders.base import LOADERS, Loader, LoaderContext, SampleTable, register_loader

__all__ = ["LOADERS", "Loader", "LoaderContext", "SampleTable", "register_loader"]
