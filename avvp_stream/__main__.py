"""``python -m avvp_stream``: the same command as ``avvp-stream``."""

from .cli import main

main()
