-- +goose Up
-- Reservations live in a narrow table of their own (see the MySQL
-- migration): grants.reserved_by and grants.reserved_until are no longer
-- written.
CREATE TABLE grant_reservations (
    grant_id INTEGER NOT NULL PRIMARY KEY,
    holder   TEXT    NOT NULL,
    until    TEXT    NOT NULL
);

INSERT INTO grant_reservations (grant_id, holder, until)
SELECT id, reserved_by, reserved_until FROM grants
WHERE reserved_by IS NOT NULL AND reserved_until IS NOT NULL AND status = 'active';
UPDATE grants SET reserved_by = NULL, reserved_until = NULL WHERE reserved_by IS NOT NULL;
DROP INDEX grants_reserved;

-- +goose Down
CREATE INDEX grants_reserved ON grants (reserved_by);
UPDATE grants SET
    reserved_by = (SELECT holder FROM grant_reservations r WHERE r.grant_id = grants.id),
    reserved_until = (SELECT until FROM grant_reservations r WHERE r.grant_id = grants.id)
WHERE id IN (SELECT grant_id FROM grant_reservations);
DROP TABLE grant_reservations;
