"""Errors the agent reports to the user as one line (exit code 2), never as a traceback."""


class AgentError(Exception):
    """Bad input or environment on the agent's side: say what happened and what to do."""
