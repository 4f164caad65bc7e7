"""Where scoring runs: worker processes and Spark."""
