-- Composite search parameters: each item of a composite's expression (an Observation, each
-- Observation.component, ...) is a tuple. Its component values are rows of their type's
-- table whose `param` is the composite's code, `$` and the component's position
-- (`component-code-value-quantity$1`), sharing one `tuple_id` per resource, so a search
-- can require every component to match within the same tuple. Rows of ordinary parameters
-- keep `tuple_id` NULL.
ALTER TABLE search_token ADD COLUMN tuple_id INTEGER;
ALTER TABLE search_string ADD COLUMN tuple_id INTEGER;
ALTER TABLE search_date ADD COLUMN tuple_id INTEGER;
ALTER TABLE search_reference ADD COLUMN tuple_id INTEGER;
ALTER TABLE search_quantity ADD COLUMN tuple_id INTEGER;
ALTER TABLE search_number ADD COLUMN tuple_id INTEGER;
ALTER TABLE search_uri ADD COLUMN tuple_id INTEGER;

-- From one component's row to the other components of its tuple; partial, so only
-- component rows are in it.
CREATE INDEX search_token_tuple ON search_token (resource_type, resource_id, param, tuple_id) WHERE tuple_id IS NOT NULL;
CREATE INDEX search_string_tuple ON search_string (resource_type, resource_id, param, tuple_id) WHERE tuple_id IS NOT NULL;
CREATE INDEX search_date_tuple ON search_date (resource_type, resource_id, param, tuple_id) WHERE tuple_id IS NOT NULL;
CREATE INDEX search_reference_tuple ON search_reference (resource_type, resource_id, param, tuple_id) WHERE tuple_id IS NOT NULL;
CREATE INDEX search_quantity_tuple ON search_quantity (resource_type, resource_id, param, tuple_id) WHERE tuple_id IS NOT NULL;
CREATE INDEX search_number_tuple ON search_number (resource_type, resource_id, param, tuple_id) WHERE tuple_id IS NOT NULL;
CREATE INDEX search_uri_tuple ON search_uri (resource_type, resource_id, param, tuple_id) WHERE tuple_id IS NOT NULL;
