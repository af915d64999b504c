"""Training: the CNN's fit and checkpoints, the evaluation designs, nested tuning, the linear baseline and torchrun."""
