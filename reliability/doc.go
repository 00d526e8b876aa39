// Package reliability holds the tests that prove the engine's promise:
// every eligible grant is sent exactly once or is still available, whatever
// happens: processes killed mid-run, several replicas, WeChat faults, a
// database restart, bad input. The tests run real engine processes (the
// wxcampaign binary) against MariaDB and the WeChat simulator; see
// docs/reliability.md for the figures they produce.
package reliability
