"""sbatch script rendering (every value shell-quoted), submission and status."""
from common.config import register_section

register_section("slurm", "slurm.config:SlurmConfig")
