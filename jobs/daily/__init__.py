"""Job scripts Cloud Scheduler fires every day: `python -m jobs.daily.<script>`."""
