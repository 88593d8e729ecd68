"""The CBRN hazard filter: lexicon from public lists -> normalise + match -> fastText -> decision."""
