"""The trainer: `python -m pretrain.train` (see pretrain/train.py and docs/contract.md, section train/)."""
import warnings

from common.config import register_section

register_section("train", "pretrain.config:TrainConfig")
import slurm  # noqa: E402,F401  (registers [slurm]: the plan reads the training job's GPU counts)

# megatron-core says this on every import on a machine without TE/Apex; we use neither.
warnings.filterwarnings("ignore", message=r".*(Transformer Engine|Apex) (and Apex )?(are|is) not installed.*")
