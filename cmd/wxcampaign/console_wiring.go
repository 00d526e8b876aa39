package main

import (
	"context"
	"sync"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/console"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store"
)

// hooks make the scheduler honour stored campaign pauses at each tick and
// store each run's report.
func (a *app) hooks(eng *engine.Engine) engine.Hooks {
	return engine.Hooks{
		Paused: func(ctx context.Context, campaign string, _ time.Time) bool {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return console.Paused(ctx, a.db, a.log, campaign)
		},
		Finished: func(ctx context.Context, sum engine.Summary, err error) {
			a.recordRun(ctx, sum, err, eng.Holder())
		},
	}
}

// newConsole builds the console of the daemon; nil when no console token
// is configured.
func (a *app) newConsole(ctx context.Context, eng *engine.Engine, current func() []*campaigns.Campaign) (*console.Server, *retrier, error) {
	if len(a.cfg.Console.Tokens) == 0 {
		return nil, nil, nil
	}
	rt := &retrier{a: a, eng: eng, root: ctx, current: current}
	srv, err := console.New(console.Config{Tokens: a.cfg.Console.Tokens, AppID: a.cfg.WeChat.AppID, Location: a.loc, Logger: a.log},
		console.Deps{Store: a.db, Previewer: eng, Retrier: rt, Templates: &consoleTemplates{db: a.db, appid: a.cfg.WeChat.AppID}})
	if err != nil {
		return nil, nil, err
	}
	return srv, rt, nil
}

// retrier retries a stopped run in the daemon: reopen at the checkpoint,
// then run the occurrence in the background with the current campaign.
type retrier struct {
	a       *app
	eng     *engine.Engine
	root    context.Context
	current func() []*campaigns.Campaign
	wg      sync.WaitGroup
}

// Retry implements console.Retrier.
func (r *retrier) Retry(ctx context.Context, id int64) (store.Run, error) {
	run, err := r.a.db.GetRunByID(ctx, id)
	if err != nil {
		return run, err
	}
	var c *campaigns.Campaign
	for _, x := range r.current() {
		if x.Name == run.Campaign {
			c = x
		}
	}
	if c == nil {
		return run, wx.Errorf(wx.ECONFLICT, "campaign %q is not loaded: it cannot be retried here", run.Campaign)
	}
	if run, err = r.a.db.ReopenRun(ctx, id, time.Now()); err != nil {
		return run, err
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		sum, err := r.eng.Run(r.root, c, engine.Options{At: run.Occurrence})
		r.a.recordRun(r.root, sum, err, r.eng.Holder())
	}()
	return run, nil
}

// Wait waits for the retries in progress.
func (r *retrier) Wait() {
	if r != nil {
		r.wg.Wait()
	}
}

// consoleTemplates gives the console the account's template titles and
// keyword labels from the template registry (templates sync, which `run`
// keeps fresh every templates.refresh), re-read at most once a minute.
type consoleTemplates struct {
	db    *store.DB
	appid string
	mu    sync.Mutex
	at    time.Time
	byID  map[string]console.Template
}

// Template implements console.Templates.
func (t *consoleTemplates) Template(ctx context.Context, id string) (console.Template, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byID == nil || time.Since(t.at) > time.Minute {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		reg, err := t.db.Templates(ctx, t.appid)
		t.at = time.Now()
		if err == nil {
			t.byID = map[string]console.Template{}
			for _, x := range reg.Templates {
				ct := console.Template{Title: x.Title, Labels: map[string]string{}}
				for _, k := range x.Keys {
					if k.Label != "" {
						ct.Labels[k.Key] = k.Label
					}
				}
				t.byID[x.ID] = ct
			}
		}
	}
	ct, ok := t.byID[id]
	return ct, ok
}
