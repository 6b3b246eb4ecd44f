DROP TRIGGER IF EXISTS topics_refuse_cycle ON topics;
DROP FUNCTION IF EXISTS topics_refuse_cycle();
