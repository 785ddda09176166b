"""CloudAct job scripts: `python jobs/<category>/<script>.py`; `python -m jobs` lists them."""
