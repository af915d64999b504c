"""Workflows that tie the layers together: a study, assessing a newcomer, inference, background jobs, the demo and the benchmark."""
