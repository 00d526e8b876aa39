package main

import (
	"context"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store"
)

// asOf is the ledger as a preview --at T sees it: grants made after T are
// not there yet, and reservations are judged at T.
type asOf struct {
	engine.Store
	db *store.DB
	at time.Time
}

// ListAvailable lists the grants available at the preview's time.
func (s asOf) ListAvailable(ctx context.Context, templateID string, afterID int64, limit int, _ time.Time) ([]wx.Grant, error) {
	return s.db.ListAvailableAsOf(ctx, templateID, afterID, limit, s.at, s.at)
}
