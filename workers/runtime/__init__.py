"""The arq runtime: worker settings and context, the job functions and their wrapper, the scopes
that coalesce reconciles, and the resync that marks every one."""
