"""Scoring open deals: probabilities, explanations, reasons and decisions."""
