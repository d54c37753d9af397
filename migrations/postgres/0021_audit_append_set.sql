-- kiln_audit_append (migration 0020) inserted a batch one row at a time, each INSERT a
-- statement of its own inside the function. It now links the rows first (the same SHA-256
-- over the previous hash, the seq as 8 big-endian bytes and the body) and inserts the whole
-- batch with one INSERT … SELECT over the arrays: the same rows, far less work per row.
CREATE OR REPLACE FUNCTION kiln_audit_append(
    event_ids     TEXT[],
    recordeds     BIGINT[],
    type_codes    TEXT[],
    subtypes      TEXT[],
    actions       TEXT[],
    outcomes      TEXT[],
    agent_whos    TEXT[],
    agent_users   TEXT[],
    agent_clients TEXT[],
    patients      TEXT[],
    entities      TEXT[],
    bodies        BYTEA[]
) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    head_seq  BIGINT;
    head_hash BYTEA;
    hashes    BYTEA[] := '{}';
    n         INT := coalesce(array_length(bodies, 1), 0);
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    SELECT seq, hash INTO head_seq, head_hash FROM audit_chain_head WHERE singleton FOR UPDATE;
    FOR i IN 1 .. n LOOP
        head_hash := sha256(head_hash || int8send(head_seq + i) || bodies[i]);
        hashes := array_append(hashes, head_hash);
    END LOOP;
    INSERT INTO audit_events (seq, event_id, recorded, type_code, subtype, action, outcome,
                              agent_who, agent_user, agent_client, patient, entity, body, hash)
    SELECT head_seq + t.i, t.event_id, t.recorded, t.type_code, t.subtype, t.action, t.outcome,
           t.agent_who, t.agent_user, t.agent_client, t.patient, t.entity, t.body, t.hash
    FROM unnest(event_ids, recordeds, type_codes, subtypes, actions, outcomes, agent_whos,
                agent_users, agent_clients, patients, entities, bodies, hashes)
         WITH ORDINALITY AS t(event_id, recorded, type_code, subtype, action, outcome,
                              agent_who, agent_user, agent_client, patient, entity, body,
                              hash, i);
    UPDATE audit_chain_head SET seq = head_seq + n, hash = head_hash WHERE singleton;
END
$$;
