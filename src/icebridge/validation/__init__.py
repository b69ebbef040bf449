"""Validation: prove a destination holds its source's data, level by level, reading both sides independently.

Modules: ``structure`` (level 1), ``metadata`` (level 2, manifests only), ``identity`` (level 3, file
checksums), ``digest`` (level 4, row digests per partition), ``drilldown`` (level 5, rows on one side
only), ``partitions`` (partition labels shared by the levels), ``reader`` (IceBridge's own Parquet
reader), ``values`` (JSON-safe values), ``report`` (the HTML report) and ``gx`` (Great Expectations
Data Docs, optional). ``icebridge.phases.validate`` runs the levels.
"""
