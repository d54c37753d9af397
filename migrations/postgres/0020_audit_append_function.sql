-- Appending a batch of audit events in one round trip: the function takes the chain head's
-- lock, links each event to the one before (SHA-256 over the previous hash, the seq as 8
-- big-endian bytes — int8send — and the body, as src/store/audit/hash.rs does), inserts it
-- and moves the head. Called on its own it is one statement, so one commit; inside a write's
-- transaction it commits with the write.
CREATE FUNCTION kiln_audit_append(
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
BEGIN
    SELECT seq, hash INTO head_seq, head_hash FROM audit_chain_head WHERE singleton FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(bodies, 1), 0) LOOP
        head_seq := head_seq + 1;
        head_hash := sha256(head_hash || int8send(head_seq) || bodies[i]);
        INSERT INTO audit_events (seq, event_id, recorded, type_code, subtype, action, outcome,
                                  agent_who, agent_user, agent_client, patient, entity, body, hash)
        VALUES (head_seq, event_ids[i], recordeds[i], type_codes[i], subtypes[i], actions[i],
                outcomes[i], agent_whos[i], agent_users[i], agent_clients[i], patients[i],
                entities[i], bodies[i], head_hash);
    END LOOP;
    UPDATE audit_chain_head SET seq = head_seq, hash = head_hash WHERE singleton;
END
$$;
