"""The Textual chat panel (`mnemara run`). Import `mnemara.ui.tui.app` for the app itself.

This package file imports nothing, so `mnemara.ui.tui.history` and `.status` (pure logic, no
Textual) can be used and tested without loading Textual.
"""
