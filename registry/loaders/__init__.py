"""Registered on-disk formats. Importing this package registers every built-in loader."""

from registry.loaders import (amat, chest_xray, dtd, embedded, idx, imagefolder,  # noqa: F401
                              imagenet_subset, isic2018, kimia960, medmnist, openml_images, pcam,
                              stl10)
from registry.loaders.base import LOADERS, Loader, LoaderContext, SampleTable, register_loader

__all__ = ["LOADERS", "Loader", "LoaderContext", "SampleTable", "register_loader"]
