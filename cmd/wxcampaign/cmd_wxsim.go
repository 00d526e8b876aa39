package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

func wxsimCmd(g *globals) *cobra.Command {
	var listen, templates, appid, secret, pushURL, pushToken string
	var faults wxsim.Faults
	var lenient, frozen bool
	var allowIPs []string
	cmd := &cobra.Command{
		Use:   "wxsim",
		Short: "Run the WeChat simulator: stable_token, token, subscribe/send, gettemplate, jscode2session and admin endpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			if appid == "" {
				appid = cfg.WeChat.AppID
			}
			if secret == "" {
				secret = cfg.WeChat.Secret
			}
			if appid == "" || secret == "" {
				return &exitError{code: 2, err: fmt.Errorf("wxsim: --appid and --secret (or wechat.appid/secret, %s/%s) are required", envAppID, envSecret)}
			}
			if (pushURL == "") != (pushToken == "") {
				return &exitError{code: 2, err: fmt.Errorf("wxsim: --push-url and --push-token go together")}
			}
			defs, err := wxsim.LoadTemplates(templates)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			// Bind first: "listening" is printed only once it is true.
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("wxsim: listen %s: %w", listen, err)}
			}
			fmt.Fprintf(g.stdout, "wxsim: %d templates, listening on %s\n", len(defs), ln.Addr())
			if pushURL != "" {
				fmt.Fprintf(g.stdout, "wxsim: pushing subscribe_msg_sent_event to %s\n", pushURL)
			}
			err = wxsim.Serve(cmd.Context(), ln, wxsim.Config{
				AppID: appid, Secret: secret, Templates: defs, Faults: faults, LooseCredits: lenient,
				PushURL: pushURL, PushToken: pushToken, AllowedIPs: allowIPs, SecretFrozen: frozen,
			}, g.logger(cfg))
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:9090", "address to listen on")
	f.StringVar(&templates, "templates", "", "templates file (YAML or JSON)")
	f.StringVar(&appid, "appid", "", "the appid the simulator accepts (default: wechat.appid)")
	f.StringVar(&secret, "secret", "", "the secret the simulator accepts (default: wechat.secret)")
	f.BoolVar(&lenient, "lenient-credits", false, "do not require a credit for one-time sends")
	f.StringSliceVar(&allowIPs, "allow-ip", nil, "IP whitelist: token requests from other addresses get 40164 (default: any)")
	f.BoolVar(&frozen, "secret-frozen", false, "answer every token request with 40243 (AppSecret frozen)")
	f.Float64Var(&faults.SystemBusy, "fault-busy", 0, "rate of errcode -1 replies")
	f.Float64Var(&faults.HTTP500, "fault-500", 0, "rate of HTTP 500 replies")
	f.Float64Var(&faults.HTTP503, "fault-503", 0, "rate of HTTP 503 replies")
	f.DurationVar(&faults.Latency, "latency", 0, "added latency per send")
	f.Float64Var(&faults.WithholdAfterDeliver, "fault-withhold", 0, "rate of sends delivered whose reply is withheld")
	f.DurationVar(&faults.WithholdFor, "withhold-for", 0, "how long a withheld reply hangs")
	f.IntVar(&faults.QuotaAfter, "quota-after", 0, "answer 45009 after this many sends (0 = off)")
	f.IntVar(&faults.ExpireTokenEvery, "expire-token-every", 0, "invalidate the token after every N sends (0 = off)")
	f.StringVar(&pushURL, "push-url", "", "message push URL: POST a subscribe_msg_sent_event there after every delivered message")
	f.StringVar(&pushToken, "push-token", "", "token that signs pushes (signature = sha1 of sorted token, timestamp, nonce)")
	f.Float64Var(&faults.PushDropRate, "fault-push-drop", 0, "rate of delivered messages whose push never comes")
	_ = cmd.MarkFlagRequired("templates")
	return cmd
}
