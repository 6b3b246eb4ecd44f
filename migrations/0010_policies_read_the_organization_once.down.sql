DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['events', 'companies', 'speakers', 'topics', 'media', 'event_speakers',
                           'event_companies', 'event_topics', 'outbox', 'idempotency_records'] LOOP
    EXECUTE format('ALTER POLICY tenant_isolation ON %I USING (org_id = current_org_id()) '
                   'WITH CHECK (org_id = current_org_id())', t);
  END LOOP;
END
$$;
ALTER POLICY tenant_isolation ON organizations USING (id = current_org_id());
ALTER POLICY tenant_isolation ON api_keys USING (org_id = current_org_id());
