"""IceBridge: move foreign Apache Iceberg tables into managed Iceberg tables."""

__version__ = "0.1.0"
