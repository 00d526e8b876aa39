package wechat

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
)

// TokenStore shares one access token per appid across processes. The store
// package implements it; nil means every process keeps its own token.
type TokenStore interface {
	// LoadToken returns the shared token, "" when there is none.
	LoadToken(ctx context.Context, appid string) (token string, expiresAt time.Time, err error)
	// SaveToken stores a freshly fetched token.
	SaveToken(ctx context.Context, appid, token string, expiresAt time.Time) error
	// TryTokenLease takes the refresh lease for appid until the given time,
	// unless another holder has it; it reports whether holder has it now.
	TryTokenLease(ctx context.Context, appid, holder string, now, until time.Time) (bool, error)
	// DropToken removes the shared token if it is still token.
	DropToken(ctx context.Context, appid, token string) error
}

// tokenReply is the reply of stable_token and token.
type tokenReply struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// tokenRequest is the body of stable_token.
type tokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// Token returns a valid access token: the cached one, or one fetched from
// /cgi-bin/stable_token (normal mode) when the cache is empty or the token
// is within RefreshAhead of its expiry. Concurrent callers share one fetch.
// With a TokenStore the token is loaded from the store first and only the
// holder of the store's refresh lease fetches; the others keep using the
// old token while it is valid, or wait briefly for the new one.
func (c *Client) Token(ctx context.Context) (string, error) {
	now := c.now()
	c.mu.Lock()
	tok, exp, ref := c.tok, c.exp, c.refresh
	c.mu.Unlock()
	if tok != "" && now.Before(ref) {
		return tok, nil
	}
	ch := c.group.DoChan("token", func() (any, error) {
		// The fetch outlives a caller that gives up: others may wait on it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*c.timeout)
		defer cancel()
		return c.obtain(fctx)
	})
	select {
	case <-ctx.Done():
		if tok != "" && now.Before(exp) {
			return tok, nil
		}
		return "", &APIError{Op: "token", Class: ClassRetryable, Err: ctx.Err()}
	case r := <-ch:
		if r.Err != nil {
			// A refresh ahead of expiry failed: the old token still works.
			if tok != "" && c.now().Before(exp) {
				c.log.WithError(r.Err).Warn("wechat: token refresh failed, using the current token until it expires")
				return tok, nil
			}
			return "", r.Err
		}
		return r.Val.(string), nil
	}
}

// InvalidateToken drops token from the cache (and from the shared store)
// after WeChat rejected it, so that the next call fetches a new one. A token
// that is no longer the cached one is ignored.
func (c *Client) InvalidateToken(ctx context.Context, token string) {
	if token == "" {
		return
	}
	c.mu.Lock()
	if c.tok == token {
		c.tok, c.exp, c.refresh = "", time.Time{}, time.Time{}
	}
	c.bad = token
	c.mu.Unlock()
	if c.store != nil {
		if err := c.store.DropToken(ctx, c.appid, token); err != nil {
			c.log.WithError(redactErr(err, c.secrets()...)).Warn("wechat: drop shared token")
		}
	}
}

// obtain gets a token from the shared store or from WeChat and caches it.
func (c *Client) obtain(ctx context.Context) (string, error) {
	if c.store == nil {
		tok, exp, err := c.fetch(ctx)
		if err != nil {
			return "", err
		}
		return c.cache(tok, exp), nil
	}
	// Shared mode: the store's token if it is fresh enough.
	tok, exp, fresh, usable := c.loadShared(ctx)
	if fresh {
		return c.cache(tok, exp), nil
	}
	now := c.now()
	lease := max(10*time.Second, 3*c.timeout)
	got, err := c.store.TryTokenLease(ctx, c.appid, c.holder, now, now.Add(lease))
	if err != nil {
		c.log.WithError(redactErr(err, c.secrets()...)).Warn("wechat: token lease failed, fetching without it")
		got = true
	}
	if got {
		// Another process may have saved a token just before the lease.
		if t2, e2, fresh2, _ := c.loadShared(ctx); fresh2 {
			return c.cache(t2, e2), nil
		}
		ntok, nexp, err := c.fetch(ctx)
		if err != nil {
			return "", err
		}
		if err := c.store.SaveToken(ctx, c.appid, ntok, nexp); err != nil {
			c.log.WithError(redactErr(err, c.secrets()...)).Warn("wechat: save shared token")
		}
		return c.cache(ntok, nexp), nil
	}
	if usable {
		// Someone else is refreshing; the current token still works.
		return c.cacheUntilExpiry(tok, exp), nil
	}
	// No usable token: wait for the lease holder to save one.
	deadline := time.Now().Add(max(2*c.timeout, 2*time.Second))
	wait := 20 * time.Millisecond
	for time.Now().Before(deadline) {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", &APIError{Op: "token", Class: ClassRetryable, Err: ctx.Err()}
		case <-t.C:
		}
		if t2, e2, _, usable2 := c.loadShared(ctx); usable2 {
			return c.cache(t2, e2), nil
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
	// The holder did not deliver: fetch ourselves (normal-mode stable_token
	// does not invalidate anyone's token).
	c.log.Warn("wechat: no shared token appeared in time, fetching one")
	ntok, nexp, err := c.fetch(ctx)
	if err != nil {
		return "", err
	}
	if err := c.store.SaveToken(ctx, c.appid, ntok, nexp); err != nil {
		c.log.WithError(redactErr(err, c.secrets()...)).Warn("wechat: save shared token")
	}
	return c.cache(ntok, nexp), nil
}

// loadShared reads the store's token: fresh = not due for refresh, usable =
// not expired; a token this process saw rejected is neither.
func (c *Client) loadShared(ctx context.Context) (tok string, exp time.Time, fresh, usable bool) {
	tok, exp, err := c.store.LoadToken(ctx, c.appid)
	if err != nil {
		c.log.WithError(redactErr(err, c.secrets()...)).Warn("wechat: load shared token")
		return "", time.Time{}, false, false
	}
	c.mu.Lock()
	bad := c.bad
	c.mu.Unlock()
	if tok == "" || tok == bad {
		return "", time.Time{}, false, false
	}
	c.remember(tok)
	now := c.now()
	return tok, exp, now.Before(c.refreshAt(exp)), now.Before(exp)
}

// refreshAt returns when a token expiring at exp should be refreshed:
// RefreshAhead before expiry, but at most half the lifetime of the tokens
// WeChat hands out (learnt at each fetch).
func (c *Client) refreshAt(exp time.Time) time.Time {
	return exp.Add(-time.Duration(c.effAhead.Load()))
}

// cache stores tok as the process's token and returns it.
func (c *Client) cache(tok string, exp time.Time) string {
	c.mu.Lock()
	c.tok, c.exp, c.refresh = tok, exp, c.refreshAt(exp)
	c.mu.Unlock()
	c.remember(tok)
	return tok
}

// cacheUntilExpiry caches tok to be used until it expires; the next call
// after that checks the store again. It is used while another process
// holds the refresh lease.
func (c *Client) cacheUntilExpiry(tok string, exp time.Time) string {
	now := c.now()
	c.mu.Lock()
	// Look again soon: by then the lease holder has saved the new token.
	c.tok, c.exp, c.refresh = tok, exp, minTime(exp, now.Add(max(c.timeout, time.Second)))
	c.mu.Unlock()
	c.remember(tok)
	return tok
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// fetch calls stable_token in normal mode; if WeChat hands back the token
// that was just rejected, it asks once more with force_refresh.
func (c *Client) fetch(ctx context.Context) (string, time.Time, error) {
	c.mu.Lock()
	bad := c.bad
	c.mu.Unlock()
	tok, exp, err := c.stableToken(ctx, false)
	if err == nil && tok == bad {
		c.log.Warn("wechat: stable_token returned the rejected token, forcing a refresh")
		tok, exp, err = c.stableToken(ctx, true)
	}
	return tok, exp, err
}

// stableToken calls /cgi-bin/stable_token.
func (c *Client) stableToken(ctx context.Context, force bool) (string, time.Time, error) {
	body, err := json.Marshal(tokenRequest{GrantType: "client_credential", AppID: c.appid, Secret: c.secret, ForceRefresh: force})
	if err != nil {
		return "", time.Time{}, &APIError{Op: "token", Class: ClassConfig, Err: fmt.Errorf("encode request: %w", err)}
	}
	var r tokenReply
	if err := c.call(ctx, request{op: "token", method: "POST", path: "/cgi-bin/stable_token", body: body, out: &r}); err != nil {
		c.log.WithField("class", ClassOf(err)).WithError(err).Warn("wechat: fetch access token")
		return "", time.Time{}, err
	}
	if r.AccessToken == "" || r.ExpiresIn <= 0 {
		return "", time.Time{}, &APIError{Op: "token", Class: ClassAmbiguous, Err: fmt.Errorf("reply without access_token or expires_in")}
	}
	c.remember(r.AccessToken)
	ttl := time.Duration(r.ExpiresIn) * time.Second
	c.effAhead.Store(int64(min(c.ahead, ttl/2)))
	exp := c.now().Add(ttl)
	c.log.WithFields(logrus.Fields{"expires_in": r.ExpiresIn, "force_refresh": force}).Info("wechat: fetched access token")
	if c.onRef != nil {
		c.onRef()
	}
	return r.AccessToken, exp, nil
}
