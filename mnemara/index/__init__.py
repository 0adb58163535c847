"""The memory index: every memory atom (turns, notes, wiki sections, manual entries) in one
LanceDB table, searched by full text and by vector, fused.

Importing this package is cheap; LanceDB, pyarrow and the embedders load only when an index is
opened or a vector is computed.
"""
