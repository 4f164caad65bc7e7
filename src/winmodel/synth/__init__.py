"""Synthetic CRM histories with a known truth, for the demo and for measuring models."""
