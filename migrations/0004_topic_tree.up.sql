-- Topics form a tree. A self-parent is a CHECK (topics_not_own_parent); a longer cycle (A under B, B under A)
-- needs the rest of the tree, so a trigger walks up from the new parent and refuses the change when it meets the
-- topic itself. Two concurrent re-parentings could each see an acyclic tree and together close a cycle, so the
-- walk runs under a transaction-scoped lock per organization: under READ COMMITTED each statement of this
-- function takes a fresh snapshot, so the walk after the lock sees every re-parenting committed before it.
-- The error is a check violation with its own constraint name; the service reports it as FAILED_PRECONDITION
-- (reason TOPIC_CYCLE). Only updates that set a non-null parent pay for it: no insert can close a cycle, since
-- nothing refers to a topic before it exists.
CREATE FUNCTION topics_refuse_cycle() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- Lock space 0x65647474 ("edtt"), apart from the relay's partition locks and the per-aggregate bigint locks.
  PERFORM pg_advisory_xact_lock(1701082228, hashtext(NEW.org_id::text));
  IF EXISTS (
    -- UNION (not UNION ALL) ends the walk even on a cycle written before this rule existed.
    WITH RECURSIVE ancestors(id) AS (
      SELECT NEW.parent_id
      UNION
      SELECT t.parent_id FROM topics t JOIN ancestors a ON t.id = a.id
      WHERE t.org_id = NEW.org_id AND t.parent_id IS NOT NULL
    )
    SELECT FROM ancestors WHERE id = NEW.id
  ) THEN
    RAISE EXCEPTION 'topic % would become its own ancestor', NEW.id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'topics_parent_not_descendant';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER topics_refuse_cycle
  BEFORE UPDATE OF parent_id ON topics
  FOR EACH ROW
  -- A topic that names itself is topics_not_own_parent's case (INVALID_ARGUMENT: the request alone is wrong).
  WHEN (NEW.parent_id IS NOT NULL AND NEW.parent_id IS DISTINCT FROM OLD.parent_id AND NEW.parent_id <> NEW.id)
  EXECUTE FUNCTION topics_refuse_cycle();
