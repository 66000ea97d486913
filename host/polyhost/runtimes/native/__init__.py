"""The native runtime: Rust node functions, built in or from extension modules of one's own."""

from ._plugin import PLUGIN, NativeOptions, NativePlugin
from ._runtime import NativeRuntime, native_limits, path_params

__all__ = [
    "PLUGIN",
    "NativeOptions",
    "NativePlugin",
    "NativeRuntime",
    "native_limits",
    "path_params",
]
