"""Metrics, bootstrap intervals and plots."""
