"""The language server behind `linkstar lsp`: the checker, formatter and schema in an editor.

`server` wires the Language Server Protocol (pygls) to the modules beside it, one per feature;
`command` is the click command.  Nothing here is imported by the rest of the package, and only
`command` is imported when the command line starts, so `linkstar check` stays quick.
"""
