"""Validation: prove a destination holds its source's data, level by level, reading both sides independently.

``comparators`` is the registry of what each level proves, one module per level (``structure``,
``metadata``, ``identity``, ``digest``, ``drilldown``) over the modules here that do the reading:
``structure`` (level 1), ``metadata`` (level 2, manifests only), ``identity`` (level 3, file checksums),
``digest`` (level 4, row digests per partition; ``parquet_scan`` its DuckDB reader, ``rowhash`` the row
hash both readers share), ``drilldown`` (level 5, rows on one side only), ``partitions`` (partition
labels shared by the levels), ``reader`` (IceBridge's own Parquet reader), ``values`` (JSON-safe
values), ``spark_exec`` (levels 3 and 4 run on a Spark cluster's executors with the same code),
``report`` (the HTML report) and ``gx`` (Great Expectations Data Docs, optional).
``icebridge.phases.validate`` walks the registry.
"""
