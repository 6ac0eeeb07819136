"""`linkstar lsp`: the language server, speaking LSP over standard input and output."""

from __future__ import annotations

import click


@click.command("lsp")
@click.option("--stdio", is_flag=True, help="Talk over standard input and output (the default; accepted "
                                            "because editors pass it).")
@click.option("--log-file", type=click.Path(dir_okay=False), default=None,
              help="Write the server's log to this file (default: standard error).")
def lsp_command(stdio: bool, log_file: str | None) -> None:
    """Run the language server for editors: diagnostics, hover, completion, definitions, formatting."""
    import logging

    logging.basicConfig(filename=log_file, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pygls logs every message at INFO; its warnings and errors are enough.
    logging.getLogger("pygls").setLevel(logging.WARNING)
    from .server import serve

    serve()
