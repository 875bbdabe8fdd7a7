"""memstore inside other frameworks' apps (needs that framework installed: langchain-core for .langchain)."""
