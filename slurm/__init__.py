"""sbatch script rendering (every value shell-quoted), submission and status."""
