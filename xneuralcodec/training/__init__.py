"""Training data, the held-out split, the training and export scripts: never imported by the codec."""
