"""The 64-bit row hash of the content digest, as one DuckDB SQL expression.

Both level-4 readers hash with this SQL: the general path over Arrow batches
(:mod:`icebridge.validation.digest`) and DuckDB's own Parquet scan (:mod:`icebridge.validation.parquet_scan`),
so a table digested partly by each gives the hashes one reader alone would.

* every column value is hashed with DuckDB's ``hash()`` (a non-linear 64-bit mix); nested values are
  hashed structurally: a struct hashes its null flag and each field's hash; a list its null flag,
  its length and the ordered list of element hashes; a map its null flag, size and the sorted list
  of (key hash, value hash) pairs (Iceberg maps are unordered);
* the row hash combines one salt (the scheme, the column count and every column's type tag) with the
  columns in order (DuckDB's multi-argument hash is position-aware), and is then re-hashed once
  more so the final value is fully mixed;
* floating-point values are hashed with their sign bit (DuckDB alone hashes ``-0.0`` like ``0.0``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pyarrow as pa

__all__ = ["HASH_SCHEME", "row_hash_sql", "type_tag"]

HASH_SCHEME = "icebridge-rowhash-v3"


def type_tag(t: pa.DataType) -> str:
    """Type name independent of Arrow layout variants (string/large_string/string_view are one type)."""
    if pa.types.is_dictionary(t):
        return type_tag(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    if isinstance(t, pa.ExtensionType):
        return f"{t.extension_name}<{type_tag(t.storage_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(type_tag(t.field(i).type) for i in range(t.num_fields)) + ">"
    if pa.types.is_map(t):
        return f"map<{type_tag(t.key_type)},{type_tag(t.item_type)}>"
    if pa.types.is_timestamp(t) and t.tz is not None:
        tz = "UTC" if t.tz in ("UTC", "+00:00", "Etc/UTC", "Z") else t.tz
        return f"timestamp[{t.unit}, tz={tz}]"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        return f"list<{type_tag(t.value_type)}>"
    return str(t)


def _value_hash_sql(expr: str, t: pa.DataType, depth: int = 0) -> str:
    """SQL for a UBIGINT hash of the value ``expr`` of (prepared) Arrow type ``t``; never NULL."""
    if pa.types.is_dictionary(t):
        return _value_hash_sql(expr, t.value_type, depth)
    if pa.types.is_struct(t):
        parts = [
            _value_hash_sql(f"struct_extract_at({expr}, {i + 1})", t.field(i).type, depth) for i in range(t.num_fields)
        ]
        return f"hash('struct', ({expr}) IS NULL, {', '.join(parts) if parts else '0'})"
    var = f"x{depth}"
    if pa.types.is_map(t):
        k = _value_hash_sql(f"{var}.key", t.key_type, depth + 1)
        v = _value_hash_sql(f"{var}.value", t.item_type, depth + 1)
        return (
            f"hash('map', ({expr}) IS NULL, cardinality({expr}), "
            f"list_sort(list_transform(map_entries({expr}), lambda {var}: hash({k}, {v}))))"
        )
    if (
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
        or pa.types.is_list_view(t)
        or pa.types.is_large_list_view(t)
    ):
        e = _value_hash_sql(var, t.value_type, depth + 1)
        return f"hash('list', ({expr}) IS NULL, len({expr}), list_transform({expr}, lambda {var}: {e}))"
    if pa.types.is_floating(t):
        # DuckDB hashes -0.0 like 0.0 (and every NaN alike): add the sign bit, except for NaN
        return f"hash(({expr}) IS NULL, {expr}, signbit({expr}) AND NOT isnan({expr}))"
    return f"hash(({expr}) IS NULL, {expr})"


def _is_nested(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return _is_nested(t.value_type)
    return pa.types.is_nested(t)


def _salt(types: Sequence[pa.DataType]) -> int:
    """One 64-bit constant for the scheme, the column count and every column's type tag, in order."""
    text = "|".join([HASH_SCHEME, str(len(types)), *(type_tag(t) for t in types)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def row_hash_sql(types: Sequence[pa.DataType], column_names: Sequence[str]) -> str:
    """SQL expression of the 64-bit row hash over columns ``column_names`` of types ``types``.

    ``types`` are the columns' Arrow types (they give the type tags, folded into one salt computed
    here once rather than hashed per row). Primitive columns go straight into DuckDB's position-aware
    multi-argument hash, where NULL hashes to a constant of its own; floating-point columns add their
    sign bit; nested columns get the structural hash above, which tells a null struct or list from one
    of nulls or an empty one.
    """
    parts = [f"{_salt(types)}::UBIGINT"]
    for name, t in zip(column_names, types, strict=True):
        column = f'"{name}"'
        value_type = t.value_type if pa.types.is_dictionary(t) else t
        special = _is_nested(value_type) or pa.types.is_floating(value_type)
        parts.append(_value_hash_sql(column, value_type) if special else column)
    return f"hash(hash({', '.join(parts)}))"
