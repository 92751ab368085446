"""What a convolution is: the frozen spec, its geometry, layouts, dtypes, initializers and the one field table."""

from convdiff.spec.convspec import (BUILTIN_INPUTS, DEFAULT_SHAPE, IMAGE_SHAPE, ConvSpec, Padding, PaddingMode,
                                    parse_padding)
from convdiff.spec.fields import FIELDS, parse_fields
from convdiff.spec.geometry import Pads
from convdiff.spec.parse import parse_shape

__all__ = ["BUILTIN_INPUTS", "DEFAULT_SHAPE", "FIELDS", "IMAGE_SHAPE", "ConvSpec", "Padding", "PaddingMode", "Pads",
           "parse_fields", "parse_padding", "parse_shape"]
