"""Trellis: keeps Trello workspace and board membership in step with a local membership store.

This package is the shell: settings, logging, the `trellis` command and the wiring of the parts.
"""

__version__ = "0.1.0"
