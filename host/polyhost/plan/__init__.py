"""The plan: the one door to the Rust extension (DAG plan, scheduler state, CEL programs,
patterns).

Nothing else in the host imports `polyhost._native`; every native error comes out as a
PolyhostError.
"""
