"""The python runtime: python handlers, inline or in worker processes."""

from ._plugin import PLUGIN, PythonOptions, PythonPlugin
from ._runtime import PythonRuntime

__all__ = ["PLUGIN", "PythonOptions", "PythonPlugin", "PythonRuntime"]
