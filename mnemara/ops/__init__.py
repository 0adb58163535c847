"""Operations: what both the shell commands (`cli.py`) and the chat's slash commands
(`ui/commands.py`) do, each written once. No UI library imports; heavy imports inside functions.
"""
