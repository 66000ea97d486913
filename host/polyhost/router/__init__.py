"""The RuntimeRouter: sends each node to the runtime its node type declares.

The seam where a node leaves the engine; an executor that hands node types to another machine
(a Ray cluster, say) goes here.
"""
