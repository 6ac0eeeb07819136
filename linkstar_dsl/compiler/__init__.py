"""Compiling checked flows into plans the runtime can execute over the DuckDB store.

`sql.py` turns guard expressions into parameterised SQL; `plan.py` turns a flow into a `FlowPlan`
(its trigger, steps, gates and policy obligations); `due.py` builds, per step, the one query that
selects the occurrences due in a time range together with every gate input.
"""
