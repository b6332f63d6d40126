"""Pure, tested building blocks every algorithm shares: returns and targets, schedules, config, seeding,
errors, logging and checkpoint files. Nothing here imports from the rest of deeprl."""
