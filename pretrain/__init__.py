"""The trainer: `python -m pretrain.train` (see pretrain/train.py and docs/contract.md, section train/)."""
import warnings

# megatron-core says this on every import on a machine without TE/Apex; we use neither.
warnings.filterwarnings("ignore", message=r".*(Transformer Engine|Apex) (and Apex )?(are|is) not installed.*")
