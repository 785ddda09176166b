-- Members of an organization, with the index the API's "members of org" lookup uses.
CREATE TABLE IF NOT EXISTS org_members (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email varchar(320) NOT NULL,
    role varchar(20) NOT NULL DEFAULT 'viewer'
        CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    invited_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, email)
);

CREATE INDEX IF NOT EXISTS org_members_email_idx ON org_members (lower(email));
