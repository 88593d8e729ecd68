"""Data pipeline: ingest -> dedupe -> cbrn -> tokenize, as blocks run by an executor."""
