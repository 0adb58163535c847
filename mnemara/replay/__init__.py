"""Replay: consolidating an instance's memory while it sleeps.

Replay reads the atoms of the last few days, finds the patterns in them, and drafts what it
found as *proposals* (a wiki page, a role amendment) that the user reviews before anything in
the wiki or the role doc changes, plus a digest of the night in `sleep/YYYY-MM-DD.md`. Nothing
here imports a UI; `proposals` is the store both replay and the review commands write through.
"""
