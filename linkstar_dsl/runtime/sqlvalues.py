"""Handing many values to DuckDB in one parameter.

DuckDB converts each bound Python value separately, and each conversion looks for optional
libraries first; for a list of thousands of ids that costs more than the query.  A JSON document
is one parameter whatever its length, and `from_json` turns it back into typed values inside the
database.  Only values travel this way; the SQL around them is fixed text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

ID_LIST = "(SELECT unnest(from_json(?, '[\"VARCHAR\"]')))"


def id_list(ids: Iterable[str]) -> str:
    """The parameter for `ID_LIST`: the ids as a JSON array of strings."""
    return json.dumps([str(i) for i in ids], ensure_ascii=False)
