-- The reference lookup index ends in the owner: a search driven by one reference
-- (`Observation?patient=G&…`) reads its candidates in `resource_id` order, the default page
-- order, and stops after the page, even when the Patient holds 20,000 Observations and the
-- statistics expect 190 (see src/store/search/plan.rs). `target_type` stays in the index, after
-- the owner, so the lookup remains index-only. It replaces the old lookup index (same prefix),
-- so writes keep their cost.
DROP INDEX search_reference_lookup;
CREATE INDEX search_reference_lookup ON search_reference (resource_type, param, target_id, resource_id, target_type);
