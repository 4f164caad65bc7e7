"""winmodel: win probabilities for B2B deals, learned from a company's own closed deals."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("winmodel")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
