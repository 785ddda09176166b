"""Job scripts run by hand around a release: `python -m jobs.manual.<script>`."""
