"""Interpretation: saliency maps, the checks that they depend on the model, and the linear pattern."""
