"""The worker side: everything that runs as arq jobs, one room a purpose.

- `outside`: talking to Trello and SCIM (clients, the shared rate limiter, their errors);
- `reconcile`: pure plans and the one runner that applies them, for boards and workspaces;
- `workflows`: offboarding, pushing API changes, accounts, adoption, webhook upkeep;
- `runtime`: the arq side (worker settings and context, job functions and their wrapper, the scopes
  that coalesce reconciles, and the resync that marks them all).

Dependencies point down that list's reverse: runtime -> workflows -> reconcile -> outside, all of them
-> `jobs` (the contract) and `membership` (the store). Nothing here imports `trellis` or `receiver`.
"""
