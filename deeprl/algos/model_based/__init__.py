"""Model-based RL (CS285 lectures 11-12): agents that learn a dynamics model from their own data
and plan with it (MPC) or train a policy with it."""
