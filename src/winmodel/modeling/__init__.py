"""Fitting, calibrating and evaluating the win-probability model, and its saved format."""
