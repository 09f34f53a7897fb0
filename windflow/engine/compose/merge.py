"""Compose documents whose values remember where they come from, and the Compose
Specification's rules for merging them (``docker compose -f a -f b``, ``extends``).

A :class:`LocatedMap` / :class:`LocatedList` is a plain ``dict`` / ``list`` whose ``where``
gives, per key or item, the (file, line) its value was read at. The merge functions never
change their arguments: they return new located values, each item keeping the origin of the
file that gave it (a replaced scalar: the later file; a merged mapping: the first one).

Used by :mod:`windflow.engine.compose.project`. Pure Python, no Django.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from windflow.engine.compose import format_path

Origin = tuple[str, int]


class LocatedMap(dict):
    """A mapping whose ``where`` gives, per key, the (file, line) of its value."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.where: dict[Any, Origin] = {}

    def put(self, key: Any, value: Any, origin: Origin) -> None:
        self[key] = value
        self.where[key] = origin

    def drop(self, key: Any) -> None:
        self.pop(key, None)
        self.where.pop(key, None)


class LocatedList(list):
    """A sequence whose ``where`` gives the (file, line) of each item."""

    def __init__(self, *args):
        super().__init__(*args)
        self.where: list[Origin] = []

    def add(self, value: Any, origin: Origin) -> None:
        self.append(value)
        self.where.append(origin)

    def set(self, index: int, value: Any, origin: Origin) -> None:
        self[index] = value
        self.where[index] = origin


def located(value: Any, positions: Mapping, file: str, path: tuple, fallback: int) -> Any:
    line = positions.get(path, (fallback, 0))[0]
    if isinstance(value, dict):
        out = LocatedMap()
        for key, child in value.items():
            sub = (*path, key)
            out.put(
                key,
                located(child, positions, file, sub, line),
                _origin_of(positions, file, sub, line),
            )
        return out
    if isinstance(value, list):
        out = LocatedList()
        for index, child in enumerate(value):
            sub = (*path, index)
            out.add(
                located(child, positions, file, sub, line), _origin_of(positions, file, sub, line)
            )
        return out
    return value


def _origin_of(positions: Mapping, file: str, path: tuple, fallback: int) -> Origin:
    return (file, positions.get(path, (fallback, 0))[0])


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: plain(child) for key, child in value.items()}
    if isinstance(value, list):
        return [plain(child) for child in value]
    return value


def fill_source_map(value: Any, path: tuple, out: dict[str, Origin]) -> None:
    if isinstance(value, LocatedMap):
        for key, child in value.items():
            sub = (*path, key)
            out[format_path(sub)] = value.where[key]
            fill_source_map(child, sub, out)
    elif isinstance(value, LocatedList):
        for index, child in enumerate(value):
            sub = (*path, index)
            out[format_path(sub)] = value.where[index]
            fill_source_map(child, sub, out)


# --- merge rules (the Compose Specification's "merge" section) ----------------------------

_REPLACED = frozenset({"command", "entrypoint"})
_BY_KEY = frozenset({"environment", "labels", "sysctls", "annotations"})
_STRING_OR_LIST = frozenset(
    {"dns", "dns_search", "dns_opt", "tmpfs", "env_file", "cap_add", "cap_drop"}
)


def copy_located(value: Any) -> Any:
    """A copy of a located value (scalars are immutable and shared)."""
    if isinstance(value, LocatedMap):
        out = LocatedMap((key, copy_located(child)) for key, child in value.items())
        out.where = dict(value.where)
        return out
    if isinstance(value, LocatedList):
        out = LocatedList(copy_located(child) for child in value)
        out.where = list(value.where)
        return out
    if isinstance(value, dict | list):
        return copy.deepcopy(value)
    return value


def _deep(base: Any, over: Any) -> Any:
    """Mappings merged key by key, sequences appended, anything else replaced."""
    if isinstance(base, LocatedMap) and isinstance(over, LocatedMap):
        out = copy_located(base)
        for key, value in over.items():
            if key in out:
                merged = _deep(out[key], value)
                origin = out.where[key] if isinstance(merged, dict | list) else over.where[key]
                out.put(key, merged, origin)
            else:
                out.put(key, copy_located(value), over.where[key])
        return out
    if isinstance(base, LocatedList) and isinstance(over, LocatedList):
        return _append_unique(base, over, _identity)
    return copy_located(over)


def _identity(item: Any) -> Any:
    if isinstance(item, dict | list):
        return repr(plain(item))
    return item


def _append_unique(base: LocatedList, over: LocatedList, key) -> LocatedList:
    """`base` then the items of `over`; an item of `over` with the same unique key as one
    already there replaces it (merged when both are mappings), in its place."""
    out = copy_located(base)
    index = {key(item): i for i, item in enumerate(out)}
    for item, origin in zip(over, over.where, strict=True):
        k = key(item)
        if k is not None and k in index:
            i = index[k]
            old = out[i]
            merged = (
                _deep(old, item)
                if isinstance(old, LocatedMap) and isinstance(item, LocatedMap)
                else copy_located(item)
            )
            out.set(i, merged, origin)
        else:
            if k is not None:
                index[k] = len(out)
            out.add(copy_located(item), origin)
    return out


def as_list(value: Any, origin: Origin) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        seq = LocatedList()
        seq.add(value, origin)
        return seq
    return value


def _as_map(value: Any, *, separator: str = "=", empty: Any = None) -> Any:
    """``["A=1", "B"]`` -> ``{A: "1", B: None}`` (other values as they are)."""
    if not isinstance(value, LocatedList):
        return value
    out = LocatedMap()
    for item, origin in zip(value, value.where, strict=True):
        if isinstance(item, str):
            key, sep, rest = item.partition(separator)
            out.put(key.strip(), rest if sep else empty, origin)
        elif isinstance(item, dict):  # depends_on / networks items never are; keep going
            continue
        else:
            out.put(str(item), empty, origin)
    return out


def _by_key(base: Any, over: Any) -> Any:
    if isinstance(base, LocatedList) and isinstance(over, LocatedList):
        # both lists: keep the list form, the later entry of a key wins
        return _append_unique(base, over, lambda item: str(item).partition("=")[0].strip())
    return _deep(_as_map(base), _as_map(over))


def _port_key(item: Any) -> Any:
    if isinstance(item, dict):
        return (
            str(item.get("host_ip") or ""),
            str(item.get("published") or ""),
            str(item.get("target") or ""),
            str(item.get("protocol") or "tcp"),
        )
    text = str(item)
    text, _, protocol = text.partition("/")
    host_ip = ""
    if text.startswith("["):
        end = text.find("]")
        host_ip, text = text[: end + 1], text[end + 2 :]
    parts = text.split(":")
    if len(parts) >= 3:
        host_ip, parts = ":".join(parts[:-2]), parts[-2:]
    published, target = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    if not published:
        return None  # an ephemeral port: never the same as another
    return (host_ip, published, target, protocol or "tcp")


def _mount_target(item: Any) -> Any:
    if isinstance(item, dict):
        return item.get("target")
    parts = str(item).split(":")
    return parts[1] if len(parts) >= 2 else parts[0]


def _file_target(default_dir: str):
    def key(item: Any) -> Any:
        if isinstance(item, dict):
            target = item.get("target")
            source = item.get("source")
        else:
            target, source = None, item
        if target:
            return str(target) if str(target).startswith("/") else f"{default_dir}/{target}"
        return f"{default_dir}/{source}"

    return key


def _env_file_key(item: Any) -> Any:
    return item.get("path") if isinstance(item, dict) else item


def _host_key(item: Any) -> Any:
    text = str(item)
    return re.split(r"[:=]", text, maxsplit=1)[0].strip()


_UNIQUE = {
    "ports": _port_key,
    "volumes": _mount_target,
    "devices": _mount_target,
    "secrets": _file_target("/run/secrets"),
    "configs": _file_target(""),
    "env_file": _env_file_key,
    "extra_hosts": _host_key,
}


def merge_service(base: LocatedMap, over: LocatedMap) -> LocatedMap:
    """Service `over` (a later file, or the service that extends) merged onto `base`."""
    out = copy_located(base)
    for key, value in over.items():
        origin = over.where[key]
        if key not in out:
            out.put(key, copy_located(value), origin)
            continue
        old = out[key]
        if key in _REPLACED:
            merged = copy_located(value)
        elif key in _BY_KEY:
            merged = _by_key(old, value)
        elif key == "build":
            merged = _merge_build(old, out.where[key], value, origin)
        elif key in ("depends_on", "networks"):
            merged = _merge_named(old, value, key)
        elif key == "logging":
            merged = _merge_logging(old, value)
        elif key == "healthcheck" and isinstance(old, LocatedMap) and isinstance(value, LocatedMap):
            merged = _deep(old, value)
            if "test" in value:
                merged.put("test", copy_located(value["test"]), value.where["test"])
        elif key == "deploy" and isinstance(old, LocatedMap) and isinstance(value, LocatedMap):
            merged = _deep(old, value)
            if isinstance(old.get("labels"), LocatedList | LocatedMap) and "labels" in value:
                merged.put("labels", _by_key(old["labels"], value["labels"]), out.where[key])
        else:
            if key in _STRING_OR_LIST or key == "extra_hosts":
                old, value = as_list(old, out.where[key]), as_list(value, origin)
            if key in _UNIQUE and isinstance(old, LocatedList) and isinstance(value, LocatedList):
                merged = _append_unique(old, value, _UNIQUE[key])
            elif key == "extra_hosts" and isinstance(old, LocatedMap | LocatedList):
                merged = _deep(_as_map(old, separator=":"), _as_map(value, separator=":"))
            else:
                merged = _deep(old, value)
        keep = isinstance(merged, dict | list) and key not in _REPLACED
        out.put(key, merged, out.where[key] if keep else origin)
    return out


def _merge_build(old: Any, old_origin: Origin, new: Any, new_origin: Origin) -> Any:
    def mapping(value: Any, origin: Origin) -> LocatedMap:
        if isinstance(value, LocatedMap):
            return value
        out = LocatedMap()
        out.put("context", value, origin)
        return out

    if isinstance(old, str) and isinstance(new, str):
        return new
    base, over = mapping(old, old_origin), mapping(new, new_origin)
    merged = _deep(base, over)
    for key in ("args", "labels"):
        if key in base and key in over:
            merged.put(key, _by_key(base[key], over[key]), base.where[key])
    return merged


def _merge_named(old: Any, new: Any, key: str) -> Any:
    """depends_on / networks: a list of names or a mapping of name -> options."""
    if isinstance(old, LocatedList) and isinstance(new, LocatedList):
        return _append_unique(old, new, _identity)
    empty = {"condition": "service_started"} if key == "depends_on" else None

    def mapping(value: Any) -> Any:
        if not isinstance(value, LocatedList):
            return value
        out = LocatedMap()
        for item, origin in zip(value, value.where, strict=True):
            out.put(str(item), _as_located(empty, origin), origin)
        return out

    return _deep(mapping(old), mapping(new))


def _as_located(value: Any, origin: Origin) -> Any:
    if isinstance(value, dict):
        out = LocatedMap()
        for key, child in value.items():
            out.put(key, child, origin)
        return out
    return value


def _merge_logging(old: Any, new: Any) -> Any:
    if isinstance(old, LocatedMap) and isinstance(new, LocatedMap):
        if old.get("driver") and new.get("driver") and old["driver"] != new["driver"]:
            return copy_located(new)
        return _deep(old, new)
    return copy_located(new)


def merge_models(base: LocatedMap, over: LocatedMap) -> LocatedMap:
    """Two whole compose models (``-f a -f b``): sections merged by name."""
    out = copy_located(base)
    for key, value in over.items():
        origin = over.where[key]
        old = out.get(key)
        if key == "services" and isinstance(old, LocatedMap) and isinstance(value, LocatedMap):
            merged = copy_located(old)
            for name, service in value.items():
                if isinstance(merged.get(name), LocatedMap) and isinstance(service, LocatedMap):
                    merged.put(name, merge_service(merged[name], service), merged.where[name])
                else:
                    merged.put(name, copy_located(service), value.where[name])
            out.put(key, merged, out.where[key])
        elif key in out:
            merged = _deep(old, value)
            out.put(key, merged, out.where[key] if isinstance(merged, dict | list) else origin)
        else:
            out.put(key, copy_located(value), origin)
    return out


__all__ = [
    "LocatedList",
    "LocatedMap",
    "Origin",
    "as_list",
    "copy_located",
    "fill_source_map",
    "located",
    "merge_models",
    "merge_service",
    "plain",
]
