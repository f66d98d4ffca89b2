"""mergekit 0.1.4's Python API on mergeforge: change one import line.

    # from mergekit.config import MergeConfiguration
    # from mergekit.merge import MergeOptions, run_merge
    from mergeforge.mergekit_compat import MergeConfiguration, MergeOptions, run_merge

    cfg = MergeConfiguration.model_validate(config_dict)
    run_merge(cfg, "out/", options=MergeOptions(copy_tokenizer=True, cuda=False, lazy_unpickle=True))

``run_merge`` runs ``mergeforge mergekit-yaml``, so the output has mergekit's layout (shards,
index, ``mergekit_config.yml``, README.md, tokenizer files) and every option means what the
``mergekit-yaml`` flag of the same name means here (docs/mergekit-compat.md): mapped to
mergeforge's equivalent, or accepted with a note that it changes nothing. Failures raise
:class:`mergeforge.MergeforgeError` (a RuntimeError; ``ConfigError`` is also a ValueError).
"""

import copy
import logging
import os
import warnings

from . import _yaml
from ._api import _ConfigFile, _finish
from ._launcher import find_launcher
from ._process import Job

__all__ = ["MergeConfiguration", "MergeOptions", "run_merge", "parse_kmb"]

_CONFIG_FIELDS = ("modules", "slices", "models", "merge_method", "base_model", "dtype", "tokenizer_source", "tokenizer",
                  "chat_template", "out_dtype", "parameters")


def parse_kmb(value):
    """mergekit's size syntax: an int, or digits with k, m or b (thousand, million, billion)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    s = str(value)
    mult = {"k": 1000, "m": 1000 ** 2, "b": 1000 ** 3}.get(s[-1:].lower(), 1)
    digits = s[:-1] if mult != 1 else s
    if not digits.isdigit():
        raise ValueError(value)
    return int(digits) * mult


class MergeConfiguration:
    """A merge config as mergekit's ``MergeConfiguration``: build it with :meth:`model_validate`
    (a dict, as ``yaml.safe_load`` returns) and read its fields as attributes. mergekit's own checks
    run here (a ``merge_method``; exactly one of ``models``, ``slices``, ``modules``; not both
    ``tokenizer_source`` and ``tokenizer``), raising ValueError as pydantic does; everything else is
    checked by mergeforge when the merge starts."""

    def __init__(self, **data):
        if not isinstance(data.get("merge_method"), str):
            raise ValueError("merge_method: a merge config needs merge_method (a string such as linear, ties, slerp)")
        if sum(1 for k in ("models", "slices", "modules") if data.get(k)) != 1:
            raise ValueError("Exactly one of 'models', 'slices', or 'modules' must be present")
        if data.get("tokenizer_source") and data.get("tokenizer"):
            raise ValueError("Cannot specify both tokenizer_source and tokenizer")
        object.__setattr__(self, "_data", copy.deepcopy(data))

    @classmethod
    def model_validate(cls, obj):
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, dict):
            raise ValueError(f"a merge config is a mapping, not {type(obj).__name__}")
        return cls(**obj)

    def __getattr__(self, name):
        data = object.__getattribute__(self, "_data")
        if name in data:
            return data[name]
        if name in _CONFIG_FIELDS:
            return None
        raise AttributeError(name)

    def __setattr__(self, name, value):
        self._data[name] = value

    def model_dump(self, exclude_defaults=False, mode="python", **_ignored):
        d = copy.deepcopy(self._data)
        return {k: v for k, v in d.items() if v is not None} if exclude_defaults else d

    def to_yaml(self):
        return _yaml.dump(self.model_dump(exclude_defaults=True)).rstrip()

    def referenced_models(self):
        seen = []

        def add(m):
            if m and m not in seen:
                seen.append(m)

        def from_section(section):
            for m in section.get("models") or []:
                add(m.get("model"))
            for s in section.get("slices") or []:
                for src in s.get("sources") or []:
                    add(src.get("model"))

        add(self._data.get("base_model"))
        from_section(self._data)
        for module in (self._data.get("modules") or {}).values():
            from_section(module)
        return seen

    def __eq__(self, other):
        return isinstance(other, MergeConfiguration) and self._data == other._data

    def __repr__(self):
        return f"MergeConfiguration({self._data!r})"


class MergeOptions:
    """mergekit 0.1.4's ``MergeOptions``: the same field names and defaults, immutable, with its
    rules: ``gpu_rich`` turns on ``cuda``, ``low_cpu_memory``, ``read_to_gpu`` and ``multi_gpu``;
    ``device`` defaults to "cuda" with ``cuda`` (or ``gpu_rich``), else "cpu". Unknown fields are
    ignored with a warning (pydantic ignores them silently)."""

    model_fields = {
        "allow_crimes": False, "transformers_cache": None, "lora_merge_cache": None, "lora_merge_dtype": None,
        "cuda": False, "device": None, "low_cpu_memory": False, "out_shard_size": 5 * 1000 ** 3, "copy_tokenizer": True,
        "clone_tensors": False, "trust_remote_code": False, "random_seed": None, "lazy_unpickle": False,
        "write_model_card": True, "safe_serialization": True, "verbosity": 0, "quiet": False, "read_to_gpu": False,
        "multi_gpu": False, "num_threads": None, "gpu_rich": False, "async_write": False, "write_threads": 1,
    }

    def __init__(self, **kwargs):
        unknown = sorted(set(kwargs) - set(self.model_fields))
        if unknown:
            warnings.warn(f"MergeOptions: ignoring unknown field(s) {', '.join(unknown)} (not in mergekit 0.1.4)", stacklevel=2)
        values = dict(self.model_fields)
        values.update({k: v for k, v in kwargs.items() if k in self.model_fields})
        values["out_shard_size"] = parse_kmb(values["out_shard_size"])
        explicit_device = bool(values.get("device"))
        if values["gpu_rich"]:
            values.update(cuda=True, low_cpu_memory=True, read_to_gpu=True, multi_gpu=True)
        if not values.get("device"):
            values["device"] = "cuda" if values["cuda"] or values["gpu_rich"] else "cpu"
        for k, v in values.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_explicit_device", explicit_device)

    def __setattr__(self, name, value):
        raise TypeError(f"MergeOptions is frozen (as mergekit's is): use model_copy(update={{{name!r}: ...}})")

    def model_dump(self, **_ignored):
        return {k: getattr(self, k) for k in self.model_fields}

    def model_copy(self, update=None, **_ignored):
        d = self.model_dump()
        if not self._explicit_device:
            d["device"] = None
        d.update(update or {})
        return MergeOptions(**d)

    def apply_global_options(self):
        """mergekit's logging level from ``verbosity`` (seeds and threads go to the merge itself)."""
        level = logging.DEBUG if self.verbosity > 1 else logging.INFO if self.verbosity == 1 else logging.WARNING
        logging.basicConfig(level=level)

    def __eq__(self, other):
        return isinstance(other, MergeOptions) and self.model_dump() == other.model_dump()

    def __repr__(self):
        return "MergeOptions(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.model_fields) + ")"

    def to_flags(self):
        """The ``mergekit-yaml`` flags that say the same (only values that differ from the defaults)."""
        flags = []
        for name, default in self.model_fields.items():
            value = getattr(self, name)
            flag = "--" + name.replace("_", "-")
            if name == "device":
                if self._explicit_device:
                    flags += ["--device", str(value)]
            elif name == "verbosity":
                flags += ["-v"] * int(value)
            elif value == default:
                continue
            elif isinstance(default, bool) or name == "gpu_rich":
                flags.append(flag if value else "--no-" + name.replace("_", "-"))
            elif value is not None:
                flags += [flag, os.fspath(value) if hasattr(value, "__fspath__") else str(value)]
        return flags


def run_merge(merge_config, out_path, options=None, config_source=None, *, launcher=None, progress=None):
    """mergekit's ``run_merge``: merges into ``out_path`` with mergekit's output layout.
    ``config_source`` (the YAML text) is what ``mergekit_config.yml`` gets, as in mergekit; without it
    the config is written out from ``merge_config``. Progress goes to stderr unless
    ``options.quiet`` (or pass ``progress=`` a callable taking each event). Returns the
    :class:`mergeforge.MergeResult` (mergekit returns None)."""
    if options is None:
        options = MergeOptions()
    elif isinstance(options, dict):
        options = MergeOptions(**options)
    merge_config = MergeConfiguration.model_validate(merge_config)
    source = config_source if config_source is not None else merge_config.to_yaml() + "\n"
    if progress is None and not options.quiet:
        progress = True
    cfg = _ConfigFile(source if "\n" in source else source + "\n")
    try:
        argv = [find_launcher(launcher), "mergekit-yaml", cfg.path, os.fspath(out_path), *options.to_flags(), "--events", "json"]
        job = Job(argv)
    except BaseException:
        cfg.close()
        raise
    job._cleanup = cfg
    return _finish(job, progress)
