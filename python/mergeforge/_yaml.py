"""A small YAML writer for merge configs given as dicts (no third-party YAML library needed).

Mappings and lists of mappings are written in block style, lists of scalars in flow style
(``[0.3, 0.7]``, as gradients are usually written). Strings that a YAML reader could take for
something else (numbers, booleans, null, anything with YAML punctuation) are written as JSON
strings, which YAML reads as the same double-quoted strings.
"""

import json
import math
import re

_PLAIN = re.compile(r"^[A-Za-z_./~][A-Za-z0-9_./@+\-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _string(s):
    if _PLAIN.match(s) and s.lower() not in _RESERVED and not s.startswith("~"):
        return s
    return json.dumps(s, ensure_ascii=False)


def _scalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return ".nan"
        if math.isinf(v):
            return ".inf" if v > 0 else "-.inf"
        r = repr(v)
        mantissa, e, exponent = r.partition("e")
        # YAML 1.1 readers (PyYAML, SnakeYAML) take 1e-08 for a string: the mantissa needs a dot
        return mantissa + (".0" if e and "." not in mantissa else "") + e + exponent
    if isinstance(v, str):
        return _string(v)
    if hasattr(v, "__fspath__"):
        return _string(str(v))
    raise TypeError(f"cannot write {type(v).__name__} {v!r} into a merge config; use str, int, float, bool, None, list or dict")


def _is_scalar(v):
    return not isinstance(v, (dict, list, tuple))


def _lines(v, indent):
    pad = " " * indent
    if isinstance(v, dict):
        if not v:
            return [pad + "{}"]
        out = []
        for k, item in v.items():
            if not isinstance(k, str):
                raise TypeError(f"config key {k!r}: keys must be strings")
            key = _string(k)
            if _is_scalar(item) or (isinstance(item, (list, tuple)) and all(_is_scalar(x) for x in item)) or item == {}:
                out.append(f"{pad}{key}: {_inline(item)}")
            else:
                out.append(f"{pad}{key}:")
                out.extend(_lines(item, indent + 2))
        return out
    if isinstance(v, (list, tuple)):
        if not v or all(_is_scalar(x) for x in v):
            return [pad + _inline(v)]
        out = []
        for item in v:
            sub = _lines(item, indent + 2)
            out.append(pad + "- " + sub[0][indent + 2:])
            out.extend(sub[1:])
        return out
    return [pad + _scalar(v)]


def _inline(v):
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_scalar(x) for x in v) + "]"
    if v == {}:
        return "{}"
    return _scalar(v)


def dump(config):
    """YAML text of a config made of dicts, lists, strings, numbers, booleans and None."""
    if not isinstance(config, dict):
        raise TypeError(f"a merge config is a dict, not {type(config).__name__}")
    return "\n".join(_lines(config, 0)) + "\n"
