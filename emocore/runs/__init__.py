"""What a run saved and how to read it: the registry, BIDS derivatives, the prediction bundle and the results reader."""
