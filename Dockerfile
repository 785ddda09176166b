# The CloudAct job image: the job scripts, their runtime dependencies (pinned) and the Supabase
# migrations. `make image` builds it from a context of HEAD's image inputs whose migrations/ holds the
# environment's migrations: cloudact_migrations_source's *.sql for test, stage and prod, this
# repository's examples only for local. Each Cloud Run job runs one script as a module from WORKDIR /app:
# `python -m jobs.<category>.<script>`. Without a command it prints the usage (and exits 2).
# PYTHONPATH=/app lets a script run as a file too (`python /app/jobs/...`, as the build's smoke test
# does) without editing sys.path. Built by cloudbuild-jobs.yaml.
FROM python:3.11.14-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MIGRATIONS_DIR=/app/migrations/supabase_db

WORKDIR /app

# Dependencies first: this layer is reused until requirements/jobs.txt changes.
COPY requirements/jobs.txt /app/requirements/jobs.txt
RUN pip install --no-cache-dir --no-deps --only-binary=:all: -r /app/requirements/jobs.txt \
    && pip check

RUN groupadd --system --gid 10001 cloudact \
    && useradd --system --uid 10001 --gid cloudact --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin cloudact

COPY --chown=root:root jobs/ /app/jobs/
# The one retry rule, shared with the operator side: the cloudact.gcp collection's module_utils file,
# at the import path the scripts use (standard library only; image.py SHARED lists such files).
COPY --chown=root:root collections/ansible_collections/cloudact/gcp/plugins/module_utils/verbs.py \
     /app/ansible_collections/cloudact/gcp/plugins/module_utils/verbs.py
COPY --chown=root:root migrations/ /app/migrations/supabase_db/
RUN python -m compileall -q /app/jobs /app/ansible_collections

USER 10001:10001

CMD ["python", "-m", "jobs"]
