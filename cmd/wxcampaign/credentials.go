package main

import (
	"context"
	"fmt"

	"github.com/wxcampaign/wxcampaign/wechat"
)

// checkCredentials fails fast, before any grant is touched, when WeChat
// refuses the configured credentials, and says which one is wrong. It asks
// WeChat itself: a token still valid in the store proves nothing about the
// secret.
func checkCredentials(ctx context.Context, c *wechat.Client, cfg WeChatConfig) error {
	err := c.CheckCredentials(ctx)
	if err == nil {
		return nil
	}
	const refused = "WeChat refuses the credentials: "
	switch code := wechat.Code(err); code {
	case wechat.CodeInvalidAppID:
		return fmt.Errorf(refused+"wechat.appid %q is wrong: WeChat does not know it (errcode %d)", cfg.AppID, code)
	case wechat.CodeInvalidSecret, wechat.CodeInvalidToken:
		return fmt.Errorf(refused+"wechat.secret (%s) is wrong for appid %q (errcode %d)", envSecret, cfg.AppID, code)
	case wechat.CodeIPNotAllowed:
		return fmt.Errorf(refused+"this machine's IP address is not in the mini program's IP whitelist (add it in the mini program admin: Development > Development settings): %w", err)
	case wechat.CodeSecretFrozen:
		return fmt.Errorf(refused+"the AppSecret of %q is frozen (errcode %d): unfreeze or reset it in the mini program admin", cfg.AppID, code)
	}
	return fmt.Errorf("WeChat: %w", err)
}
