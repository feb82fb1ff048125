"""Training: loss, learning-rate schedule and the training loop."""
