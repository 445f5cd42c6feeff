"""The local membership store: models, rules, persistence and migrations.

Knows nothing of HTTP, Redis or Trello: the receiver and the workers both build on it.
"""
