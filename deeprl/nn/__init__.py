"""Neural-network pieces: networks, distributions, Q-heads, normalisers, optimisers. Imports only torch,
NumPy and :mod:`deeprl.core`."""
