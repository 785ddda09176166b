"""Job scripts Cloud Scheduler fires every month: `python -m jobs.monthly.<script>`."""
