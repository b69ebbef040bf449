"""Governance: who may read and write what, checked before a migration and carried over at cut-over."""
