-- Organizations of the local environment: one row per tenant, keyed by its slug.
CREATE TABLE IF NOT EXISTS organizations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_slug varchar(100) NOT NULL UNIQUE
        CHECK (org_slug ~ '^[a-z0-9][a-z0-9_]{1,99}$'),
    org_name text NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'suspended', 'deleted')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
