"""Map keys, map values and global variables as text, typed by their codec.

What the command line reads (``pylibbpf run --set``, ``pylibbpf map update``)
and prints (``map dump``, ``list``, ``run --json``), usable from Python too::

    >>> from pylibbpf import notation
    >>> notation.parse(m.key_type, "42")              # an int key
    >>> notation.parse(m.value_type, '{"pid": 1, "comm": "bash"}')   # a struct
    >>> notation.parse(raw_codec, "0a 00 00 00")      # bytes (maps without BTF)

The notation, by type:

* integers: ``42``, ``-1``, ``0x2a``; enums: an enumerator's name or a number;
  ``bool``: ``true``/``false``/``1``/``0``; floats: ``1.5``;
* ``char[N]``: the text itself (or a JSON string);
* bytes (maps without BTF, ``u8[N]``): hex, ``"0a 0b 0c 0d"``, ``"0x0a0b0c0d"`` or
  ``"0a0b0c0d"``; a decimal integer is taken as a native-endian integer of the
  key's size;
* structs, unions and arrays: JSON (``{"field": value}``, ``[1, 2, 3]``), the
  nested fields in the same notation (byte arrays as hex strings);
* LPM trie keys: also ``"10.0.0.0/8"``; per-CPU values: one value (written to
  every CPU) or a JSON list with one value per CPU.

:func:`to_json` is the reverse for output: JSON-friendly data (records as
dicts, ``char[]`` as text, bytes as hex).
"""
from __future__ import annotations

import enum
import json
import sys
from typing import Any, List

from .typed import (ArrayCodec, BoolCodec, BytesArrayCodec, CharArrayCodec, Codec, CString, EnumCodec,
                    FloatCodec, IntCodec, PerCPU, RawCodec, StructCodec, UnionCodec)

__all__ = ["parse", "to_json", "format_value", "summed"]


def to_json(value: Any) -> Any:
    """A decoded value as JSON-friendly data."""
    if isinstance(value, CString):
        return value.text  # printable even when the bytes are not UTF-8
    if hasattr(value, "to_dict"):
        return {k: to_json(v) for k, v in value.to_dict().items()}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return str(value) if hasattr(value, "text") else bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


def format_value(value: Any) -> str:
    """One line of text for a decoded value (JSON for structs and lists)."""
    if isinstance(value, CString):
        return value.text
    if hasattr(value, "to_dict") or isinstance(value, (list, tuple)):
        return json.dumps(to_json(value))
    if isinstance(value, enum.Enum):
        return str(value.name)
    if isinstance(value, (bytes, bytearray)) and not hasattr(value, "text"):
        return bytes(value).hex()
    return str(value)


def summed(value: Any) -> Any:
    """A per-CPU value summed over CPUs (numbers add, records field by field);
    any other value unchanged."""
    if isinstance(value, PerCPU):
        try:
            return value.sum()
        except TypeError:   # not numbers (arrays, bytes): leave the CPUs apart
            return value
    return value


def _hex(text: str, size: int, exact: bool, what: str) -> bytes:
    tokens = text.replace(",", " ").split()
    try:
        if len(tokens) > 1 and all(len(t.lower().removeprefix("0x")) <= 2 for t in tokens):
            data = bytes(int(t, 16) for t in tokens)
        else:
            data = bytes.fromhex("".join(t.lower().removeprefix("0x") for t in tokens))
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not hex bytes (e.g. '0a 0b' or '0x0a0b')") \
            from None
    if (exact and len(data) != size) or len(data) > size:
        raise ValueError(f"{what}: {text!r} is {len(data)} bytes, "
                         f"{'expected' if exact else 'at most'} {size}")
    return data


def _int(text: str, what: str) -> int:
    try:
        return int(text.strip().replace("_", ""), 0)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not an integer") from None


def parse(codec: Codec, text: str, what: str = "value") -> Any:
    """The value ``text`` writes in the notation above, ready for ``codec.encode``
    (a map's ``key_type``/``value_type``, a global's codec). ``what`` names the
    input in error messages; a ``ValueError`` says what was expected."""
    from .map import LpmKeyCodec, PerCPUCodec

    if not isinstance(text, str):
        raise TypeError(f"{what}: expected text, not {type(text).__name__}")
    stripped = text.strip()
    if isinstance(codec, PerCPUCodec):
        if stripped.startswith("["):
            data = _json(stripped, codec, what)
            if isinstance(data, list) and len(data) == codec.ncpus and \
                    not isinstance(codec.inner, ArrayCodec):
                return PerCPU(_from_json(codec.inner, v, what) for v in data)
        return parse(codec.inner, text, what)
    if isinstance(codec, LpmKeyCodec):
        if "/" in stripped and not stripped.startswith("{"):
            return stripped
        return parse(codec.inner, text, what)
    if isinstance(codec, RawCodec):
        if stripped.lstrip("-").isdigit() and codec.size in (1, 2, 4, 8):
            n = int(stripped)
            try:
                return n.to_bytes(codec.size, sys.byteorder, signed=n < 0)
            except OverflowError:
                raise ValueError(f"{what}: {n} does not fit in {codec.size} bytes") from None
        return _hex(stripped, codec.size, True, what)
    if isinstance(codec, BytesArrayCodec):
        return _hex(stripped, codec.size, False, what)
    if isinstance(codec, EnumCodec):
        if stripped.lstrip("-")[:1].isdigit():
            return _int(stripped, what)
        if codec.enum is None or stripped not in codec.enum.__members__:
            names = ", ".join(codec.enum.__members__) if codec.enum else "none"
            raise ValueError(f"{what}: {text!r} is no enumerator of {codec.name} "
                             f"(it has: {names})")
        return stripped
    if isinstance(codec, BoolCodec):
        low = stripped.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{what}: {text!r} is not a bool (true/false)")
    if isinstance(codec, FloatCodec):
        try:
            return float(stripped)
        except ValueError:
            raise ValueError(f"{what}: {text!r} is not a number") from None
    if isinstance(codec, IntCodec):
        return _int(stripped, what)
    if isinstance(codec, CharArrayCodec):
        if stripped.startswith('"'):
            data = _json(stripped, codec, what)
            if isinstance(data, str):
                return data
        return text
    return _from_json(codec, _json(stripped, codec, what), what)


def _json(text: str, codec: Codec, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what}: {codec.name} is written as JSON "
                         f"(e.g. {_example(codec)}); {text!r}: {e.msg}") from None


def _example(codec: Codec) -> str:
    if isinstance(codec, StructCodec):
        return "{" + ", ".join(f'"{n}": …' for n in codec.field_names[:3]) + "}"
    if isinstance(codec, ArrayCodec):
        return "[1, 2, 3]"
    if isinstance(codec, UnionCodec):
        return '{"member": …}'
    return "42"


def _from_json(codec: Codec, data: Any, what: str) -> Any:
    """JSON data turned into what ``codec.encode`` takes (hex strings to bytes,
    number strings to ints), field by field."""
    if isinstance(codec, StructCodec) and isinstance(data, dict):
        fields = {name: c for name, c, _ in codec._fields}
        return {k: _from_json(fields[k], v, f"{what}.{k}") if k in fields else v
                for k, v in data.items()}
    if isinstance(codec, UnionCodec) and isinstance(data, dict):
        return {k: _from_json(codec.members[k], v, f"{what}.{k}") if k in codec.members else v
                for k, v in data.items()}
    if isinstance(codec, ArrayCodec) and isinstance(data, list):
        return [_from_json(codec.elem, v, f"{what}[{i}]") for i, v in enumerate(data)]
    if isinstance(codec, (RawCodec, BytesArrayCodec)):
        if isinstance(data, str):
            return parse(codec, data, what)
        if isinstance(data, int) and not isinstance(data, bool):
            return parse(codec, str(data), what)
        if isinstance(data, list):
            return bytes(data)
    if isinstance(data, str) and not isinstance(codec, (CharArrayCodec, EnumCodec)):
        return parse(codec, data, what)
    return data

