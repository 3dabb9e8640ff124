"""The strategy engine: tiers, contact rules, guardrails and explained decisions.

A pure domain package: no I/O, no clock reads, no framework. `now` is always a parameter.
"""
