"""Checker passes: plain functions `(module) -> iterable of diagnostics`, one concern each.

`checker.PASSES` lists them in the order they run.  A pass never raises on a bad program: it
reports, and later passes may assume only what the grammar guarantees.
"""
