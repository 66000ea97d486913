"""Generated code of the NodeRuntime contract (proto/); see gen_python.py."""
