"""Dataset builder, SFT and GRPO training under Ray Train, rewards, fidelity evaluation."""
