"""MLflow: logging, the registry, the promotion gate, the pyfunc and the exported champion."""
