"""GPT-OSS architecture in plain PyTorch (no parallel machinery here)."""
