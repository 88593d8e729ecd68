"""Data pipeline: ingest -> dedupe -> cbrn -> tokenize, as blocks run by an executor.

The pipeline composes a run: importing it registers its own config sections and, through the stage
registry (pipeline/stages.py), the packages whose stages it runs (filters, pretrain) and the slurm
library it submits with, so a run config's every section is checked."""
from common.config import register_section

for _name, _spec in (("ingest", "pipeline.ingest:IngestConfig"), ("dedupe", "pipeline.dedupe:DedupeConfig"),
                     ("tokenize", "pipeline.tokenize:TokenizeConfig"), ("demo", "pipeline.democorpus:DemoCorpusConfig")):
    register_section(_name, _spec)

import filters  # noqa: E402,F401  (registers [cbrn])
import pretrain  # noqa: E402,F401  (registers [train])
import slurm  # noqa: E402,F401  (registers [slurm])
