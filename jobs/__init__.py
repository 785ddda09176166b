"""CloudAct job scripts: `python -m jobs.<category>.<script>` from the checkout (or /app in the image).

`python -m jobs` lists them. The catalog names each job's file (`jobs/daily/alerts_daily.py`); its
container command is the module of that file (`python -m jobs.daily.alerts_daily`), so no script
edits sys.path to find this package.
"""
