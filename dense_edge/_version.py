"""The package's version, in a leaf every module may import (manifests stamp it)."""

__version__ = "0.1.0"
