package engine

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// storeOutage is how long the engine waits for the store to come back
// before a run gives up.
const storeOutage = 3 * time.Minute

// retry runs op until it succeeds, fails with a non-transient error, or the
// store has been unreachable for storeOutage. The store itself retries
// deadlocks; this covers a database that restarts mid-run.
func (e *Engine) retry(ctx context.Context, what string, op func() error) error {
	deadline := e.cfg.Now().Add(storeOutage)
	wait := 100 * time.Millisecond
	for {
		err := op()
		if err == nil || !transient(err) || e.cfg.Now().After(deadline) {
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

// transient reports whether err is a connection-level failure worth waiting
// out (the server restarting, a dropped connection), not a query error.
func transient(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1205, 1213, 1040, 1053, 2002, 2003, 2006, 2013, 1927:
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	s := err.Error()
	for _, m := range []string{"connection refused", "bad connection", "invalid connection", "broken pipe", "database is locked", "server shutdown", "connection reset"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}
