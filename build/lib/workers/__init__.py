"""The arq side: jobs, reconcile planning, the Trello and SCIM clients and the shared rate limiter.

The receiver uses only the job contract from here (`workers.queue`, `workers.actions`).
"""
