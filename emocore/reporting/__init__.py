"""Reporting: figures, anatomy labels and the HTML report."""
