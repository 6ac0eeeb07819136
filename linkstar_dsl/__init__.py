"""LinkStar flows: a rules-engine DSL for compliant buyer outreach.

The embedding API, for services that run flows themselves:

    import linkstar_dsl

    program = linkstar_dsl.compile(["flows/"])            # check and plan; raises CompileError
    async with linkstar_dsl.Engine(program, "shop.duckdb", channels=config) as engine:
        report = await engine.tick()                       # a TickReport: decisions and sends
        for decision in report.decisions:                  # each a Decision: send, defer or skip
            print(decision.flow, decision.decision, decision.reason)

`register_channel` adds a provider of your own (an adapter class with a `DESCRIPTION`, or a
`.toml` description) for every engine started afterwards.  Names load on first use, so importing
the package costs nothing for the command line.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "compile": ("linkstar_dsl.runtime.program", "compile_paths"),
    "compile_text": ("linkstar_dsl.runtime.program", "compile_text"),
    "CompileError": ("linkstar_dsl.runtime.program", "CompileError"),
    "Program": ("linkstar_dsl.runtime.program", "Program"),
    "Engine": ("linkstar_dsl.runtime.engine", "Engine"),
    "EngineSettings": ("linkstar_dsl.runtime.engine", "EngineSettings"),
    "TickReport": ("linkstar_dsl.runtime.engine", "TickReport"),
    "Decision": ("linkstar_dsl.gates", "Decision"),
    "ChannelsConfig": ("linkstar_dsl.adapters.engine", "ChannelsConfig"),
    "register_channel": ("linkstar_dsl.adapters.registry", "register"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'linkstar_dsl' has no attribute {name!r}")
    import importlib

    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
