"""The runtime: what is due at a clock time, the decisions on it, and sending what was decided."""

import importlib.util
import sys


def _record_missing_pandas() -> None:
    """Make DuckDB's per-parameter look for pandas cheap when pandas is not installed.

    DuckDB tries `import pandas` each time it binds a parameter; a failed import is not cached,
    so each try searches every folder on `sys.path` again, which cost more than the queries
    themselves.  Recording the absence once makes every later try fail at once.  When pandas is
    installed nothing changes.
    """
    if "pandas" not in sys.modules and importlib.util.find_spec("pandas") is None:
        sys.modules["pandas"] = None


_record_missing_pandas()
