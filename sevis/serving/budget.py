"""Caches bounded by bytes, not entries: one model of a billion parameters and a hundred small ones must not
count the same. No torch or Streamlit here; `nbytes` recognises tensors, arrays and images by duck typing.
"""
from __future__ import annotations

import dataclasses
import sys
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

MAX_DEPTH = 6  # how deep nbytes looks into containers and dataclasses


def nbytes(obj: Any, _depth: int = 0, _seen: set | None = None) -> int:
    """Return about how many bytes `obj` holds: tensors, arrays, PIL images, torch modules (parameters and
    buffers), pandas frames, and the containers and dataclasses around them."""
    seen = set() if _seen is None else _seen
    if id(obj) in seen or _depth > MAX_DEPTH:
        return 0
    seen.add(id(obj))
    if hasattr(obj, "parameters") and hasattr(obj, "buffers") and callable(obj.parameters):  # torch module
        return sum(t.numel() * t.element_size() for t in (*obj.parameters(), *obj.buffers()))
    if hasattr(obj, "element_size") and hasattr(obj, "numel"):  # tensor
        return int(obj.numel() * obj.element_size())
    if hasattr(obj, "nbytes") and isinstance(getattr(obj, "nbytes"), int):  # numpy array
        return int(obj.nbytes)
    if hasattr(obj, "memory_usage") and hasattr(obj, "columns"):  # pandas DataFrame
        return int(obj.memory_usage(deep=False).sum())
    if hasattr(obj, "getbands") and hasattr(obj, "size"):  # PIL image
        w, h = obj.size
        return w * h * len(obj.getbands())
    if isinstance(obj, (bytes, bytearray, str)):
        return len(obj)
    if isinstance(obj, dict):
        return sum(nbytes(k, _depth + 1, seen) + nbytes(v, _depth + 1, seen) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sum(nbytes(v, _depth + 1, seen) for v in obj) + 8 * len(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return sum(nbytes(getattr(obj, f.name), _depth + 1, seen) for f in dataclasses.fields(obj))
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return sum(nbytes(v, _depth + 1, seen) for v in vars(obj).values())
    return sys.getsizeof(obj, 64)


class ByteBudgetCache:
    """A least-recently-used cache whose values together hold at most `budget` bytes (a number, or a function
    read at each insertion). A value larger than the whole budget is returned but not kept. Thread-safe; each
    key is made once even when several threads ask for it at the same moment."""

    def __init__(self, budget: int | Callable[[], int], size: Callable[[Any], int] = nbytes) -> None:
        self._budget, self._size = budget, size
        self._items: "OrderedDict[Hashable, tuple[Any, int]]" = OrderedDict()
        self._lock = threading.Lock()
        self._making: dict[Hashable, threading.Lock] = {}

    @property
    def budget(self) -> int:
        return int(self._budget() if callable(self._budget) else self._budget)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    @property
    def used(self) -> int:
        """Return the bytes the kept values hold."""
        with self._lock:
            return sum(n for _, n in self._items.values())

    def get(self, key: Hashable, default: Any = None) -> Any:
        """Return the value kept for `key` (now the most recently used), or `default`."""
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key][0]

    def put(self, key: Hashable, value: Any) -> Any:
        """Keep `value` under `key`, evicting the least recently used values until the budget holds; return it."""
        n = self._size(value)
        with self._lock:
            self._items.pop(key, None)
            budget = self.budget
            if n <= budget:
                self._items[key] = (value, n)
                total = sum(m for _, m in self._items.values())
                while total > budget and len(self._items) > 1:
                    _, (_, m) = self._items.popitem(last=False)
                    total -= m
        return value

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """Return the value for `key`, made by `make()` (once, even under concurrent calls) when not kept."""
        missing = object()
        value = self.get(key, missing)
        if value is not missing:
            return value
        with self._lock:
            gate = self._making.setdefault(key, threading.Lock())
        try:
            with gate:
                value = self.get(key, missing)
                if value is missing:
                    value = self.put(key, make())
        finally:
            with self._lock:
                self._making.pop(key, None)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
