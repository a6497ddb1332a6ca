"""The registry: the data files in `zoo/` (one per publisher) loaded into `Weights`, and the look-ups.

A data file is YAML: `source: <publisher>` and `weights:`, a list of entries whose keys are the
`Weights` fields (`source` comes from the file). Every entry is validated when the registry is
first used; a bad entry is a ConfigError naming the file and the field.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import fields
from importlib import resources
from typing import Any, Iterable

from ..errors import CheckpointError, ConfigError
from .entry import SOURCES, Weights

ZOO_FILES = ("timm", "mmpose", "mmseg", "mmdet", "official")
FIELDS = {f.name for f in fields(Weights)}


def _read_zoo(stem: str) -> list[Weights]:
    import yaml

    where = f"hrnet/weights/zoo/{stem}.yaml"
    text = resources.files(__package__).joinpath("zoo").joinpath(f"{stem}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or set(data) != {"source", "weights"} or data["source"] not in SOURCES:
        raise ConfigError(f"{where}: expected the keys 'source' (one of {', '.join(SOURCES)}) and 'weights'")
    entries = []
    for index, item in enumerate(data["weights"]):
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: weights[{index}] must be a mapping of Weights fields")
        unknown = set(item) - FIELDS
        if unknown or "source" in item:
            bad = sorted(unknown | ({"source"} & set(item)))
            raise ConfigError(f"{where}: weights[{index}] ({item.get('name')}) has unknown or misplaced keys {bad}")
        try:
            entries.append(Weights(source=data["source"], **item))
        except (TypeError, ConfigError) as error:
            raise ConfigError(f"{where}: {error}") from None
    return entries


@functools.lru_cache(maxsize=1)
def _registry() -> dict[str, Weights]:
    """name -> entry, for every name and alias; a repeated name is an error."""
    table: dict[str, Weights] = {}
    for stem in ZOO_FILES:
        for entry in _read_zoo(stem):
            for name in (entry.name, *entry.aliases):
                if name in table:
                    raise ConfigError(f"weights name {name!r} is registered twice ({table[name].source} and "
                                      f"{entry.source}); names and aliases must be unique")
                table[name] = entry
    return table


def all_weights() -> list[Weights]:
    """Every entry once, in data-file order."""
    seen: dict[str, Weights] = {}
    for entry in _registry().values():
        seen.setdefault(entry.name, entry)
    return list(seen.values())


def _matches(value: str | None, wanted: str | Iterable[str] | None) -> bool:
    if wanted is None:
        return True
    return value == wanted if isinstance(wanted, str) else value in set(wanted)


def list_weights(*, task: str | None = None, arch: str | None = None, source: str | None = None,
                 available: bool | None = None) -> list[Weights]:
    """The registered weights, optionally only those of a `task`, an `arch` (a VARIANTS name) or a
    `source` (timm, mmpose, mmseg, mmdet, official); `available=True` drops entries still waiting
    for an architecture or task of this library (`Weights.pending`)."""
    return [w for w in all_weights()
            if _matches(w.task, task) and _matches(w.arch, arch) and _matches(w.source, source)
            and (available is None or w.available == available)]


def get_weights(name: "str | Weights") -> Weights:
    """The entry named `name` ("ARCH.TAG", or an alias such as timm's own model name). An unknown
    name raises CheckpointError listing the closest registered names."""
    if isinstance(name, Weights):
        return name
    table = _registry()
    if name in table:
        return table[name]
    raise CheckpointError(f"unknown weights {name!r}; {_suggest(name, table)}")


def _suggest(name: str, table: dict[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(table), n=5, cutoff=0.6)
    if not close and "." in name:  # a right tag under another arch, or the arch's own tags
        arch, tag = name.split(".", 1)
        close = [n for n in table if n.endswith("." + tag)][:5] or \
            difflib.get_close_matches(name, [n for n in table if n.startswith(arch + ".")], n=5, cutoff=0.3)
    if close:
        return "closest: " + ", ".join(close) + " (all: hrnet weights list)"
    return "see `hrnet weights list` for the registered names"


def resolve(weights: "str | Weights", arch: Any = None) -> Weights:
    """An entry from a full name, an alias, a Weights object, or a bare TAG of `arch` (a name)."""
    if isinstance(weights, Weights):
        return weights
    if not isinstance(weights, str):
        raise CheckpointError(f"weights must be a name (ARCH.TAG or TAG) or a Weights entry, "
                              f"got {type(weights).__name__}")
    if "." in weights:
        return get_weights(weights)
    if not isinstance(arch, str):
        raise CheckpointError(f"weights={weights!r} is a bare tag, and the model is given as a spec, not a name: "
                              "pass the full name ARCH.TAG")
    return get_weights(f"{arch}.{weights}")
