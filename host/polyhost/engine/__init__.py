"""The engine: drives one run on anyio, node by node, through the router.

One run (`_engine`), one DAG's scheduling (`_graph`), one node attempt (`_attempt`), loops,
and replay of a graph's state from the store on resume."""
