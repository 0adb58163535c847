"""Front ends: slash commands (shared), the REPL, one-shot mode and the TUI."""
