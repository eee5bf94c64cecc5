"""The PyTorch backend: the graph IR lowered to plain, standalone PyTorch source."""
