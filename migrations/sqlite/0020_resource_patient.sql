-- The one Patient whose compartment holds each current version (NULL when none or several):
-- a read's audit event names it from the row it reads, without parsing the body again.
-- Filled in here from resource_compartment, which holds the same compartments (only the rows
-- in some Patient's compartment are rewritten).
-- (`compartment_type || ''`: compared as the bare column, SQLite would walk the primary
-- key's compartment_type prefix instead of each resource's rows in resource_compartment_owner.)
ALTER TABLE resources ADD COLUMN patient TEXT;
UPDATE resources SET patient = (
    SELECT CASE WHEN COUNT(*) = 1 THEN MIN(c.compartment_id) END
    FROM resource_compartment c
    WHERE c.resource_type = resources.resource_type AND c.resource_id = resources.id
      AND c.compartment_type || '' = 'Patient'
)
WHERE EXISTS (
    SELECT 1 FROM resource_compartment c
    WHERE c.resource_type = resources.resource_type AND c.resource_id = resources.id
      AND c.compartment_type || '' = 'Patient'
);
