"""winmodel: win probabilities for B2B deals, learned from a company's own closed deals."""

import warnings
from importlib.metadata import PackageNotFoundError, version

# pandera imports pyspark.pandas whenever pyspark is installed (the optional Spark engine), and
# pyspark then warns about pandas 3 on every command. winmodel's Spark path is tested with pandas 3.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)

try:
    __version__ = version("winmodel")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
