package engine

import (
	"context"
	"time"

	"github.com/wxcampaign/wxcampaign/store"
)

// storeOutage is how long the engine waits for the store to come back
// before a run gives up.
const storeOutage = 3 * time.Minute

// retry runs op until it succeeds, fails with an error the store does not
// call transient (store.Transient: the database unreachable through the
// store's own short retries), or the store has been unreachable for
// storeOutage. The store retries deadlocks and short blips itself; this
// only waits out a database that restarts mid-run.
func (e *Engine) retry(ctx context.Context, what string, op func() error) error {
	deadline := e.cfg.Now().Add(storeOutage)
	wait := 100 * time.Millisecond
	for {
		err := op()
		if err == nil || !store.Transient(err) || e.cfg.Now().After(deadline) {
			return err
		}
		e.log.WithError(err).WithField("op", what).Warn("store unavailable, retrying")
		if !sleep(ctx, wait) {
			return err
		}
		if wait *= 2; wait > 5*time.Second {
			wait = 5 * time.Second
		}
	}
}
