"""`python -m linkstar_dsl` runs the `linkstar` command line."""

from .cli import run

run()
