"""The git helper: commit messages, review, and the hooks that run them inside `git commit`."""
