"""Planning and optimal-control agents with known dynamics (CS285 lecture 10): they learn
nothing; each action is planned with a simulator or an analytic model."""
