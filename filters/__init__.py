"""The CBRN hazard filter: lexicon from public lists -> normalise + match -> fastText -> decision."""
from common.config import register_section

register_section("cbrn", "filters.config:CbrnConfig")
