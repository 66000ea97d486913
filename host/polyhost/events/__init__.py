"""Events and results: the one record of what happened in a run, with secrets masked.

The engine emits, the store persists, the CLI and the server subscribe."""
