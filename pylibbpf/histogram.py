"""Histograms printed as bars in the terminal, bcc style.

A BPF program counts values into slots of a map (a ``log2`` slot per power of
two, or linear buckets); these functions read the map (or any mapping or list
of counts) and draw it:

>>> from pylibbpf.histogram import log2_histogram
>>> print(log2_histogram({2: 1, 3: 4, 4: 8, 5: 0}, label="bytes", width=16))
     bytes               : count    distribution
         4 -> 7          : 1        |**              |
         8 -> 15         : 4        |********        |
        16 -> 31         : 8        |****************|

Rows run from the first to the last non-empty slot.

Slot ``s`` of a log2 histogram counts values ``v`` with ``2**s <= v < 2**(s+1)``
(slot 0 also counts 0); ``examples/mallocsize.bpf.c`` computes it in BPF C
with shifts (``__builtin_clzll`` crashes older clang's BPF backend).

Keys may be ints, or records with a ``slot`` field and a grouping field:
``by="comm"`` prints one histogram per value of that field.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, Iterable, List, Mapping, Optional, TextIO, Tuple, Union

__all__ = ["log2_histogram", "linear_histogram", "print_log2_hist", "print_linear_hist",
           "counts_of", "log2_slot"]

Counts = Union[Mapping[Any, Any], Iterable[Any]]


def log2_slot(value: int) -> int:
    """The log2 slot of ``value`` (what the BPF side computes): 0 for 0 and 1."""
    return max(int(value), 1).bit_length() - 1


def _total(value: Any) -> int:
    if isinstance(value, (list, tuple)):  # a per-CPU value: one count per CPU
        return sum(_total(v) for v in value)
    return int(value)


def _items(counts: Counts) -> List[Tuple[Any, int]]:
    if hasattr(counts, "items"):
        return [(k, _total(v)) for k, v in counts.items()]
    return [(i, _total(v)) for i, v in enumerate(counts)]


def counts_of(counts: Counts, *, by: Optional[str] = None,
              slot_field: str = "slot") -> Dict[Any, Dict[int, int]]:
    """``{group: {slot: count}}`` from a map, a mapping or a list (one group,
    ``None``, unless ``by`` names a key field to group on)."""
    out: Dict[Any, Dict[int, int]] = {}
    for key, n in _items(counts):
        if isinstance(key, int):
            group, slot = None, key
        else:
            slot = int(getattr(key, slot_field))
            group = getattr(key, by) if by else None
            if group is not None and not isinstance(group, (int, str)):
                group = str(group)
        bucket = out.setdefault(group, {})
        bucket[slot] = bucket.get(slot, 0) + n
    return out


def _bar(n: int, most: int, width: int) -> str:
    stars = (n * width + most - 1) // most if most and n else 0
    return f"|{'*' * min(stars, width):<{width}}|"


def _draw(rows: List[Tuple[str, str, int]], label: str, width: int) -> str:
    most = max((n for _, _, n in rows), default=0)
    lw = max([len(lo) for lo, _, _ in rows] + [10])
    hw = max([len(hi) for _, hi, _ in rows] + [10])
    lines = [f"{label:>{lw}}{'':{hw + 4}} : count    distribution"]
    for lo, hi, n in rows:
        lines.append(f"{lo:>{lw}} -> {hi:<{hw}} : {n:<8} {_bar(n, most, width)}")
    return "\n".join(lines)


def _log2_rows(slots: Dict[int, int]) -> List[Tuple[str, str, int]]:
    used = [s for s, n in slots.items() if n]
    if not used:
        return []
    rows = []
    for s in range(min(used), max(used) + 1):
        lo = 0 if s == 0 else 1 << s
        hi = (1 << (s + 1)) - 1
        rows.append((str(lo), str(hi), slots.get(s, 0)))
    return rows


def _sections(groups: Dict[Any, Dict[int, int]], by: Optional[str],
              draw: Any) -> str:
    parts = []
    for group in sorted(groups, key=lambda g: (g is None, str(g))):
        text = draw(groups[group])
        if not text:
            continue
        if by is not None:
            text = f"\n{by} = {group}\n{text}"
        parts.append(text)
    return "\n".join(parts)


def log2_histogram(counts: Counts, *, label: str = "value", width: int = 40,
                   by: Optional[str] = None, slot_field: str = "slot") -> str:
    """Draw log2 slot counts as text (empty string when every count is 0)."""
    groups = counts_of(counts, by=by, slot_field=slot_field)

    def draw(slots: Dict[int, int]) -> str:
        rows = _log2_rows(slots)
        return _draw(rows, label, width) if rows else ""
    return _sections(groups, by, draw)


def linear_histogram(counts: Counts, *, label: str = "value", step: int = 1, start: int = 0,
                     width: int = 40, by: Optional[str] = None,
                     slot_field: str = "slot") -> str:
    """Draw linear bucket counts: bucket ``i`` holds values in
    ``[start + i*step, start + (i+1)*step)``; empty string when all are 0."""
    if step < 1:
        raise ValueError(f"step must be positive, not {step}")
    groups = counts_of(counts, by=by, slot_field=slot_field)

    def draw(slots: Dict[int, int]) -> str:
        used = [s for s, n in slots.items() if n]
        if not used:
            return ""
        rows = []
        for s in range(min(used), max(used) + 1):
            lo = start + s * step
            rows.append((str(lo), str(lo + step - 1), slots.get(s, 0)))
        return _draw(rows, label, width)
    return _sections(groups, by, draw)


def print_log2_hist(counts: Counts, label: str = "value", *, file: Optional[TextIO] = None,
                    **kw: Any) -> None:
    """Print :func:`log2_histogram` (nothing when the histogram is empty)."""
    text = log2_histogram(counts, label=label, **kw)
    if text:
        print(text, file=file or sys.stdout)


def print_linear_hist(counts: Counts, label: str = "value", *,
                      file: Optional[TextIO] = None, **kw: Any) -> None:
    """Print :func:`linear_histogram` (nothing when the histogram is empty)."""
    text = linear_histogram(counts, label=label, **kw)
    if text:
        print(text, file=file or sys.stdout)
