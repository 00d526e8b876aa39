-- +goose Up
-- One index fewer to write per send: the unique key leads with
-- (campaign, grant_id), so it also serves SentBefore (campaign, grant ids in
-- any occurrence) and send_log_grant goes. send_log_status keeps only the
-- status: StaleInflight reads inflight rows by id, in the index's order.
ALTER TABLE send_log
    DROP INDEX send_log_once,
    DROP INDEX send_log_grant,
    DROP INDEX send_log_status,
    ADD UNIQUE KEY send_log_once (campaign, grant_id, occurrence),
    ADD KEY send_log_status (status);

-- +goose Down
ALTER TABLE send_log
    DROP INDEX send_log_once,
    DROP INDEX send_log_status,
    ADD UNIQUE KEY send_log_once (campaign, occurrence, grant_id),
    ADD KEY send_log_grant (campaign, grant_id),
    ADD KEY send_log_status (status, holder);
