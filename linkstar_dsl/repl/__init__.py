"""`linkstar repl`: try expressions and flows against order data, one line at a time.

`state` holds the session (store, clock, chosen order, flows); `inputs` tells an expression from
a flow and says when input is complete; `evaluate` types and runs what was typed; `show` formats
the answers; `commands` implements the `:commands`; `completion` and `lexer` serve the terminal
front end in `loop`; `cli` is the click command.
"""
