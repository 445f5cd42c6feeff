"""The job contract: what the receiver, the CLI and the workers ask of each other through Redis.

`queue` puts jobs on Redis in arq's own layout, `builders` spells every job, `actions` classifies
Trello deliveries, `deadletters` keeps the jobs that failed for good. Imports nothing else of Trellis:
the receiver depends on this package alone of the worker side.
"""
