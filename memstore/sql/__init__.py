"""The SQL store, one file per concern, joined into SqlStore (memstore/sql_store.py)."""
