"""Validation: read tables through an independent path and compare order-independent content digests."""
