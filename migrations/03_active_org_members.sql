-- Members of active organizations only: what the dashboards read.
CREATE OR REPLACE VIEW active_org_members AS
SELECT o.org_slug, o.org_name, m.email, m.role, m.invited_at
FROM org_members AS m
JOIN organizations AS o ON o.id = m.org_id
WHERE o.status = 'active';
