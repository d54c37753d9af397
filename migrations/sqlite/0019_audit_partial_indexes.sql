-- The audit log's lookup indexes hold only the events that name a patient, a user, a client or
-- a resource: most events leave some of those columns empty (a request without a token has no
-- agent, a search no entity), and every searched column is compared with `=`, which never
-- matches NULL, so those rows only cost each append an index entry nobody can find.
DROP INDEX audit_events_patient;
DROP INDEX audit_events_agent_who;
DROP INDEX audit_events_agent_client;
DROP INDEX audit_events_entity;
CREATE INDEX audit_events_patient ON audit_events (patient, recorded) WHERE patient IS NOT NULL;
CREATE INDEX audit_events_agent_who ON audit_events (agent_who, recorded) WHERE agent_who IS NOT NULL;
CREATE INDEX audit_events_agent_client ON audit_events (agent_client, recorded) WHERE agent_client IS NOT NULL;
CREATE INDEX audit_events_entity ON audit_events (entity, recorded) WHERE entity IS NOT NULL;
