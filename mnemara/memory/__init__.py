"""Memory that outlives the window: notes (and later wiki, RAG, graph)."""
