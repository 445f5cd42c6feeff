"""Talking to the outside: the Trello and SCIM clients, the rate limiter they share, their errors."""
