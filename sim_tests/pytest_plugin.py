"""pytest plugin entry point (scenario collection comes with the simulation suites)."""
