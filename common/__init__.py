"""Helpers shared by every package (I/O, hashing, config, paths, progress). One place, never copied."""
