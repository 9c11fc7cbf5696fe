"""The agent's tools (read, edit, search, shell, git), one plain function each."""
