"""netc: a compiler for neural-network specs."""
