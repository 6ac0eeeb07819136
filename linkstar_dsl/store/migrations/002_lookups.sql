-- Version 2: indexes a tick reads its due rows' records through.
--
-- DuckDB answers a filter from an ART index only when the index has a single column and the
-- filter is the scan's only one (an equality, or the keys a hash join hands over).  The
-- multi-column indexes of version 1 are never used that way; these single-column ones are.
-- A tick finds the ledger's pending deferrals through `decision`.

CREATE INDEX order_events_by_order_id ON order_events (order_id);
CREATE INDEX customer_events_by_customer_id ON customer_events (customer_id);
CREATE INDEX orders_by_customer ON orders (customer_id);
CREATE INDEX consents_by_customer ON consents (customer_id);
CREATE INDEX suppressions_by_customer ON suppressions (customer_id);
CREATE INDEX ledger_by_customer_id ON ledger (customer_id);
CREATE INDEX ledger_by_decision ON ledger (decision);
