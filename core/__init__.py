"""The domain core: settings, keys and pseudonyms, the lake's storage, ID numbers, rules, watchlist and allowlist.

It imports nothing of enumwatch above it (only `schemas`), so jobs, flows and tools all build on
the same definitions; `make lint` checks that.
"""
