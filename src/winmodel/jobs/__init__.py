"""The job layer: the only place that reads files, starts MLflow runs and writes outputs.

Each job parses its inputs, calls the pure library functions and records the results.
"""
