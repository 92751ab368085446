"""Pure float64 NumPy arithmetic: the reference convolution and the rounding model."""
