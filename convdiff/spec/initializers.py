"""Kernel initializers by name, and the one seeded kernel factory every backend shares.

What users type (`glorot_uniform`, `truncated_normal(stddev=0.1)`, the TF1 spelling
`truncated_normal_initializer(stddev=0.1)`) is parsed here, once, into a frozen `InitializerSpec`
with every keyword filled in; the rest of convdiff never sees the bare string. Parsing goes
through `ast` and accepts only a name or a call of a name on literal numbers, booleans and
strings: nothing is evaluated.

Defaults are Keras 3's (e.g. `truncated_normal` stddev 0.05), not TF1's (`truncated_normal_initializer`
defaults to stddev 1.0): `truncated_normal_initializer()` therefore means stddev 0.05 here. Both
frameworks agree whenever the argument is given, and `InitializerSpec.tf1` always passes every
argument explicitly.
"""

from __future__ import annotations

import ast
import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


from convdiff.errors import BadInputError

ArgValue = float | int | str | bool

_MAX_TEXT = 200


class _ArgError(Exception):
    """A problem with an initializer's arguments, before we know how to quote the user's text."""


# --- the registry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Param:
    name: str
    default: float | str
    choices: tuple[str, ...] = ()
    """For string parameters: the accepted values (matched case-insensitively)."""
    positive: bool = False

    def coerce(self, owner: str, value: Any) -> float | str:
        if self.choices:
            if not isinstance(value, str):
                raise _ArgError(f"{owner} {self.name} must be one of {', '.join(self.choices)}, got {value!r}")
            text = value.strip().lower()
            text = _CHOICE_ALIASES.get((self.name, text), text)
            if text not in self.choices:
                raise _ArgError(f"{owner} {self.name} must be one of {', '.join(self.choices)}, got {value!r}")
            return text
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _ArgError(f"{owner} {self.name} must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise _ArgError(f"{owner} {self.name} must be finite, got {value!r}")
        if self.positive and number <= 0:
            raise _ArgError(f"{owner} {self.name} must be > 0, got {value!r}")
        return number


# Keras itself maps variance_scaling(distribution="normal") to "truncated_normal".
_CHOICE_ALIASES = {("distribution", "normal"): "truncated_normal"}


def _uniform_bounds(args: dict[str, Any]) -> str | None:
    if not args["minval"] < args["maxval"]:
        return f"random_uniform needs minval < maxval, got minval={args['minval']!r}, maxval={args['maxval']!r}"
    return None


@dataclass(frozen=True)
class _Kind:
    name: str
    keras_class: str
    description: str
    params: tuple[_Param, ...] = ()
    random: bool = True
    check: Callable[[dict[str, Any]], str | None] | None = None

    @property
    def signature(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}({', '.join(f'{p.name}={_format_value(p.default)}' for p in self.params)})"


_MEAN = _Param("mean", 0.0)
_STDDEV = _Param("stddev", 0.05, positive=True)

_KINDS: dict[str, _Kind] = {
    kind.name: kind
    for kind in (
        _Kind("ones", "Ones", "every weight 1", random=False),
        _Kind("zeros", "Zeros", "every weight 0", random=False),
        _Kind("constant", "Constant", "every weight equal to value", (_Param("value", 0.0),), random=False),
        _Kind("glorot_uniform", "GlorotUniform", "U(-limit, limit), limit = sqrt(6/(fan_in+fan_out)) (Keras default)"),
        _Kind("glorot_normal", "GlorotNormal", "truncated normal, std sqrt(2/(fan_in+fan_out)) after truncation"),
        _Kind("he_uniform", "HeUniform", "U(-limit, limit), limit = sqrt(6/fan_in)"),
        _Kind("he_normal", "HeNormal", "truncated normal, std sqrt(2/fan_in) after truncation"),
        _Kind("lecun_uniform", "LecunUniform", "U(-limit, limit), limit = sqrt(3/fan_in)"),
        _Kind("lecun_normal", "LecunNormal", "truncated normal, std sqrt(1/fan_in) after truncation"),
        _Kind("random_uniform", "RandomUniform", "U(minval, maxval)",
              (_Param("minval", -0.05), _Param("maxval", 0.05)), check=_uniform_bounds),
        _Kind("random_normal", "RandomNormal", "N(mean, stddev^2)", (_MEAN, _STDDEV)),
        _Kind("truncated_normal", "TruncatedNormal",
              "N(mean, stddev^2) redrawn outside mean ± 2 stddev (std after truncation ≈ 0.88 stddev)",
              (_MEAN, _STDDEV)),
        _Kind("orthogonal", "Orthogonal", "gain * a random orthogonal matrix (rows = prod(shape[:-1]))",
              (_Param("gain", 1.0, positive=True),)),
        _Kind("variance_scaling", "VarianceScaling", "std sqrt(scale/n), n = fan_in, fan_out or their mean",
              (_Param("scale", 1.0, positive=True),
               _Param("mode", "fan_in", choices=("fan_in", "fan_out", "fan_avg")),
               _Param("distribution", "truncated_normal",
                      choices=("truncated_normal", "untruncated_normal", "uniform")))),
        _Kind("default", "GlorotUniform",
              "the framework's own default: pass no initializer to Keras / TF1 layers / get_variable; "
              "numpy and nn use glorot_uniform (kernel) and zeros (bias)"),
    )
}

# What `default` stands for where a backend must draw something itself (numpy, nn, the distribution
# check): Keras' and the TF1 layers' defaults, which `convdiff defaults` confirms live.
FRAMEWORK_DEFAULTS = {"kernel": "glorot_uniform", "bias": "zeros"}

# alias -> canonical name. `xavier` also takes uniform=True/False (tf.contrib's xavier_initializer).
_ALIASES = {"xavier": "glorot_uniform", "xavier_uniform": "glorot_uniform", "xavier_normal": "glorot_normal"}
_XAVIER_SWITCH = "uniform"


def _valid_names() -> str:
    return "valid initializers: " + ", ".join(_KINDS) + " (aliases: " + ", ".join(_ALIASES) + ")"


def initializer_names() -> list[tuple[str, str]]:
    """Every name `parse_initializer` accepts, aliases included, with a one-line description.

    Returns:
        (name, description) pairs in registry order, aliases last; a description lists the
        keyword arguments with their defaults.
    """
    rows = []
    for kind in _KINDS.values():
        args = f" [{kind.signature[len(kind.name) + 1:-1]}]" if kind.params else ""
        rows.append((kind.name, kind.description + args))
    rows.append(("xavier", "alias of glorot_uniform; xavier(uniform=False) is glorot_normal"))
    rows.extend((alias, f"alias of {target}") for alias, target in _ALIASES.items() if alias != "xavier")
    return rows


# --- the spec ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InitializerSpec:
    """A kernel initializer by canonical name, with every keyword argument given (defaults filled in).

    Constructing one validates and normalizes it, so `InitializerSpec("truncated_normal")` equals
    `parse_initializer("truncated_normal(stddev=0.05)")`.
    """

    name: str
    """Canonical name, e.g. "glorot_uniform"."""
    args: tuple[tuple[str, ArgValue], ...] = ()
    """Keyword arguments in the registry's order, defaults filled in; floats are floats."""

    def __post_init__(self) -> None:
        kind = _KINDS.get(self.name)
        if kind is None:
            raise BadInputError(f"unknown initializer '{_one_line(str(self.name))}'; {_valid_names()}")
        try:
            args = dict(self.args)
            if len(args) != len(self.args):
                raise _ArgError(f"{kind.name} got an argument twice")
            normalized = _bind(kind, (), args)
        except (_ArgError, TypeError, ValueError) as err:
            raise BadInputError(f"bad initializer {self.name}{self.args!r}: {err}; {_valid_names()}") from None
        object.__setattr__(self, "args", normalized)

    def __str__(self) -> str:
        if not self.args:
            return self.name
        return f"{self.name}({', '.join(f'{k}={_format_value(v)}' for k, v in self.args)})"

    @property
    def is_random(self) -> bool:
        """False for ones, zeros and constant: they draw nothing and need no seed."""
        return _KINDS[self.name].random

    def kwargs(self) -> dict[str, ArgValue]:
        return dict(self.args)

    @property
    def is_default(self) -> bool:
        """`default`: the backend passes no initializer and the framework picks its own."""
        return self.name == "default"

    def resolved(self, role: str = "kernel") -> InitializerSpec:
        """This spec, with `default` replaced by what it stands for in `role` ("kernel" or "bias")."""
        return InitializerSpec(FRAMEWORK_DEFAULTS[role]) if self.is_default else self

    def constant_value(self) -> float | None:
        """The single value a non-random initializer fills with; None for a random one."""
        if self.name == "ones":
            return 1.0
        if self.name == "zeros":
            return 0.0
        if self.name == "constant":
            return float(self.kwargs()["value"])
        return None

    def keras(self, seed: int | None) -> Any:
        """The Keras 3 initializer, e.g. `keras.initializers.GlorotUniform(seed=seed)`.

        Args:
            seed: an integer for a reproducible draw (Keras draws statelessly from it, so calling
                the same instance twice gives the same values); None for a fresh random seed.
                Ignored by ones, zeros and constant.
        """
        if self.is_default:
            return self.resolved("kernel").keras(seed)
        from convdiff.frameworks import import_keras

        keras = import_keras()
        cls = getattr(keras.initializers, _KINDS[self.name].keras_class)
        if not self.is_random:
            return cls(**self.kwargs())
        return cls(**self.kwargs(), seed=seed)

    def tf1(self, seed: int | None) -> Any:
        """The TF1 equivalent (a `tf.compat.v1` initializer from TensorFlow's own `init_ops`).

        For `tf.compat.v1.get_variable(..., initializer=...)` and `tf.compat.v1.layers`. These
        classes live in TensorFlow itself, not in Keras, so this works whether or not the caller
        set TF_USE_LEGACY_KERAS. Every argument is passed explicitly: TF1's own defaults differ
        from Keras' (truncated_normal_initializer's stddev is 1.0).

        Args:
            seed: TF1 op-level seed (combined with the graph seed); None for nondeterministic draws.
        """
        from convdiff.frameworks import import_tensorflow

        if self.is_default:
            return self.resolved("kernel").tf1(seed)
        v1 = import_tensorflow().compat.v1
        kw = self.kwargs()
        name = self.name
        if name == "ones":
            return v1.ones_initializer()
        if name == "zeros":
            return v1.zeros_initializer()
        if name == "constant":
            return v1.constant_initializer(kw["value"])
        if name == "glorot_uniform":
            return v1.glorot_uniform_initializer(seed=seed)
        if name == "glorot_normal":
            return v1.glorot_normal_initializer(seed=seed)
        if name in _VARIANCE_SCALING:
            # What tf.compat.v1.initializers.he_normal & co. build, spelled out.
            scale, mode, distribution = _VARIANCE_SCALING[name]
            return v1.variance_scaling_initializer(scale=scale, mode=mode, distribution=distribution, seed=seed)
        if name == "random_uniform":
            return v1.random_uniform_initializer(minval=kw["minval"], maxval=kw["maxval"], seed=seed)
        if name == "random_normal":
            return v1.random_normal_initializer(mean=kw["mean"], stddev=kw["stddev"], seed=seed)
        if name == "truncated_normal":
            return v1.truncated_normal_initializer(mean=kw["mean"], stddev=kw["stddev"], seed=seed)
        if name == "orthogonal":
            return v1.orthogonal_initializer(gain=kw["gain"], seed=seed)
        if name == "variance_scaling":
            return v1.variance_scaling_initializer(
                scale=kw["scale"], mode=kw["mode"], distribution=kw["distribution"], seed=seed)
        raise AssertionError(f"no TF1 initializer for {name}")  # pragma: no cover - registry and this switch agree


# he/lecun as Keras defines them (keras/src/initializers/random_initializers.py).
_VARIANCE_SCALING = {
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}


# --- parsing -------------------------------------------------------------------------------------


def _parse_initializer(text: str | InitializerSpec) -> InitializerSpec:
    """Parse what a user typed into an `InitializerSpec`, without evaluating anything.

    Accepts a name (`he_normal`), a call with positional or keyword literal arguments
    (`truncated_normal(0.0, 0.1)`, `variance_scaling(mode="fan_avg")`), names in any case or in
    CamelCase (`GlorotUniform`), TF1 spellings (`glorot_uniform_initializer()`) and the aliases
    xavier, xavier_uniform, xavier_normal and `xavier(uniform=False)`.

    Args:
        text: the text, or an already parsed spec (returned as is).

    Returns:
        The canonical spec; `str()` of it parses back to an equal spec.

    Raises:
        BadInputError: one line naming the problem and listing the valid names.
    """
    if isinstance(text, InitializerSpec):
        return text
    if not isinstance(text, str):
        raise BadInputError(f"an initializer must be given as text, got {text!r}; {_valid_names()}")
    shown = f"'{_one_line(text)}'"
    source = text.strip()
    if not source:
        raise BadInputError(f"empty initializer; {_valid_names()}")
    if len(source) > _MAX_TEXT:
        raise BadInputError(f"initializer {shown} is too long; {_valid_names()}")
    try:
        node = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise BadInputError(f"malformed initializer {shown}: expected name or name(args); {_valid_names()}") from None

    try:
        if isinstance(node, ast.Name):
            raw_name, positional, keywords = node.id, [], {}
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            raw_name = node.func.id
            positional = [_literal(arg) for arg in node.args]
            keywords = {}
            for kw in node.keywords:
                if kw.arg is None:
                    raise _ArgError("**keyword expansion is not allowed")
                keywords[kw.arg] = _literal(kw.value)
        else:
            raise _ArgError("expected a name or name(literal arguments), no attributes, operators or nesting")
    except _ArgError as err:
        raise BadInputError(f"malformed initializer {shown}: {err}; {_valid_names()}") from None

    name = _canonical_name(raw_name)
    if name == "xavier":
        name = "glorot_uniform"
        if _XAVIER_SWITCH in keywords:
            uniform = keywords.pop(_XAVIER_SWITCH)
            if not isinstance(uniform, bool):
                raise BadInputError(f"bad initializer {shown}: xavier uniform must be True or False; {_valid_names()}")
            name = "glorot_uniform" if uniform else "glorot_normal"
        elif len(positional) == 1 and isinstance(positional[0], bool):
            name = "glorot_uniform" if positional.pop() else "glorot_normal"
    else:
        name = _ALIASES.get(name, name)
    kind = _KINDS.get(name)
    if kind is None:
        raise BadInputError(f"unknown initializer {shown}; {_valid_names()}")
    try:
        args = _bind(kind, tuple(positional), keywords)
    except _ArgError as err:
        raise BadInputError(f"bad initializer {shown}: {err}; {_valid_names()}") from None
    return InitializerSpec(kind.name, args)


@functools.lru_cache(maxsize=512)
def _parse_text(text: str) -> InitializerSpec:
    return _parse_initializer(text)


def parse_initializer(text: str | InitializerSpec) -> InitializerSpec:
    """Parse an initializer; see `_parse_initializer` for the accepted syntax.

    Text is parsed once and cached (the result is frozen): a sweep parses the same names per config.
    Errors are not cached, so each bad text raises every time.
    """
    if isinstance(text, str):
        return _parse_text(text)
    return _parse_initializer(text)


def _canonical_name(raw: str) -> str:
    # GlorotUniform -> glorot_uniform; OrthogonalInitializer -> orthogonal
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", raw).lower()
    return snake.removesuffix("_initializer")


def _literal(node: ast.expr) -> ArgValue:
    if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int, float, str)):
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float))
            and not isinstance(node.operand.value, bool)):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    raise _ArgError("arguments must be literal numbers, booleans or strings")


def _bind(kind: _Kind, positional: tuple[ArgValue, ...], keywords: dict[str, Any]) -> tuple[tuple[str, ArgValue], ...]:
    names = [p.name for p in kind.params]
    valid = f"valid keywords: {', '.join(names)}" if names else "it takes no arguments"
    if len(positional) > len(names):
        if not names:
            raise _ArgError(f"{kind.name} takes no arguments, got {len(positional)}")
        raise _ArgError(f"{kind.name} takes at most {len(names)} argument{'s' if len(names) != 1 else ''}, "
                        f"got {len(positional)} ({valid})")
    given = dict(zip(names, positional))
    for key, value in keywords.items():
        if key == "seed":
            raise _ArgError("the seed is not part of the initializer, it comes from the convolution's seed")
        if key not in names:
            raise _ArgError(f"unknown keyword '{key}' for {kind.name} ({valid})")
        if key in given:
            raise _ArgError(f"{kind.name} got two values for '{key}'")
        given[key] = value
    args = {p.name: p.coerce(kind.name, given.get(p.name, p.default)) for p in kind.params}
    if kind.check is not None and (problem := kind.check(args)):
        raise _ArgError(problem)
    return tuple(args.items())


def _format_value(value: ArgValue) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)  # repr(float) is the shortest text that reads back to the same float


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 60 else flat[:57] + "..."
