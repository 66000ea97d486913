"""Compile: a loaded document checked against the catalog and the runtimes into an immutable plan.

Parsing, the checker, inputs and JSON Schema, CEL templates; the result is `CompiledWorkflow`."""
