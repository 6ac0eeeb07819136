"""`linkstar report`: how each flow, step and A/B variant did after the messages went out.

`queries` counts outcomes per message in DuckDB, `stats` holds the rates and the confidence
interval of a holdout's lift, `build` assembles the rows and the alerts, `table` prints them for
people, and `cli` is the command.  Nothing is imported here, so that loading the command line
stays cheap:

    from linkstar_dsl.report.build import as_json, build
    from linkstar_dsl.report.queries import Filters, counts, open_read_only, sources

    con = open_read_only("shop.duckdb")
    filters = Filters(flow="review_request")
    report = build(counts(con, sources(con), filters), filters, sources(con))
"""
