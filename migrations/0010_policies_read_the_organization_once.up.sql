-- The tenant policies compare `org_id` with `(SELECT current_org_id())`, an InitPlan, instead of calling
-- `current_org_id()` inline. Same rows admitted, same index conditions (the InitPlan's value is a runtime key of
-- the `(org_id, ...)` indexes), evaluated once per statement. What changes is planning: an inline call is folded
-- for the estimates with the organization as it is when the statement is planned, and a read that sets its own
-- organization inside the statement (services/store/confined.rs: one round trip instead of three) is planned
-- before the setting exists, so `org_id = NULL` was estimated at zero rows and the organization's whole index
-- looked free (a lookup by id read 180,000 rows). An InitPlan is never folded: the planner estimates it as any
-- one organization.
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['events', 'companies', 'speakers', 'topics', 'media', 'event_speakers',
                           'event_companies', 'event_topics', 'outbox', 'idempotency_records'] LOOP
    EXECUTE format('ALTER POLICY tenant_isolation ON %I USING (org_id = (SELECT current_org_id())) '
                   'WITH CHECK (org_id = (SELECT current_org_id()))', t);
  END LOOP;
END
$$;
ALTER POLICY tenant_isolation ON organizations USING (id = (SELECT current_org_id()));
ALTER POLICY tenant_isolation ON api_keys USING (org_id = (SELECT current_org_id()));
