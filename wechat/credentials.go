package wechat

import (
	"context"
)

// CheckCredentials asks WeChat for an access token with the client's appid
// and secret, bypassing the cached and the shared token, so that a wrong
// appid or secret, a caller IP missing from the whitelist (40164) or a
// frozen secret (40243) is seen at start even while a token fetched
// earlier is still valid. It takes no refresh lease, so a failure leaves
// nothing for the next process to wait on. On success the token is cached
// and saved to the shared store. The error is an *APIError; decide on its
// Code.
func (c *Client) CheckCredentials(ctx context.Context) error {
	tok, exp, err := c.fetch(ctx)
	if err != nil {
		return err
	}
	c.cache(tok, exp)
	if c.store != nil {
		if err := c.store.SaveToken(ctx, c.appid, tok, exp); err != nil {
			c.log.WithError(redactErr(err, c.secrets()...)).Warn("wechat: save shared token")
		}
	}
	return nil
}
