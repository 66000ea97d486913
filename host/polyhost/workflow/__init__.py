"""The workflow model: the document reader, the pydantic models, node types and their catalog.

Every layer may use it; it imports only the errors and limits."""
