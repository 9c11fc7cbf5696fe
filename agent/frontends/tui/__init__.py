"""The Textual terminal UI (`agent` with no command)."""
