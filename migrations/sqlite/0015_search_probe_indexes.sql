-- Probe indexes: a search starts from its most selective criterion and tests each other
-- criterion per candidate by the owning resource (`EXISTS (… WHERE resource_type = … AND
-- resource_id = r.id AND param = … AND <value>)`, see src/store/search/criteria.rs). These
-- indexes lead with the owner and the parameter, then the value, so a probe is one short
-- index range whatever the code's frequency (`intent=order`, `category=laboratory`). They
-- replace the `(resource_type, resource_id)` owner indexes, whose prefix they keep for
-- re-indexing and deletes.
DROP INDEX search_token_owner;
CREATE INDEX search_token_probe ON search_token (resource_type, resource_id, param, code, system);
DROP INDEX search_string_owner;
CREATE INDEX search_string_probe ON search_string (resource_type, resource_id, param, normalized);
DROP INDEX search_date_owner;
CREATE INDEX search_date_probe ON search_date (resource_type, resource_id, param, start_us, end_us);
DROP INDEX search_reference_owner;
CREATE INDEX search_reference_probe ON search_reference (resource_type, resource_id, param, target_id, target_type);
DROP INDEX search_quantity_owner;
CREATE INDEX search_quantity_probe ON search_quantity (resource_type, resource_id, param, code, value);
DROP INDEX search_number_owner;
CREATE INDEX search_number_probe ON search_number (resource_type, resource_id, param, value);
DROP INDEX search_uri_owner;
CREATE INDEX search_uri_probe ON search_uri (resource_type, resource_id, param, uri);
