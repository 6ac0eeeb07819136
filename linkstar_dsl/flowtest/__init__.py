"""Flow tests (`linkstar test`): small TOML files that give a flow customers, orders and events at
set times, run the real simulation over them, and say which messages must be sent, deferred or
skipped, and why.

`load` reads and checks a test file, `records` and `store` turn its data into a store, `runner`
replays the clock and compares, `report` and `junit` print the outcome, `coverage` says which
gates and branches the tests exercised.  SPEC.md, "Flow tests", describes the format.

Nothing is imported here, so that `linkstar` starts quickly: import the modules themselves.
"""
