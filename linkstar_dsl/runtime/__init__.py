"""The runtime: what is due at a clock time, the decisions on it, and sending what was decided."""
