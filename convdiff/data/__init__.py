"""Every file convdiff reads (arrays, inputs, weights) and writes, with the memory and header checks."""
