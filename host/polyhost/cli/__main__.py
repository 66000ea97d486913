"""``python -m polyhost.cli``: the same as the ``polyhost`` command."""

from __future__ import annotations

from . import main

main()
