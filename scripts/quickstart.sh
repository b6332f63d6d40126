#!/usr/bin/env bash
# Install everything and train PPO on CartPole-v1 (about a minute): progress bar,
# TensorBoard logs, metrics.csv, learning_curve.png and a checkpoint in runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/deeprl train ppo --env CartPole-v1 "$@"
