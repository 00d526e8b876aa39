package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"gopkg.in/yaml.v3"

	"github.com/wxcampaign/wxcampaign/api"
	"github.com/wxcampaign/wxcampaign/cmd/wxcampaign/internal/configfile"
	"github.com/wxcampaign/wxcampaign/console"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/wechat"
)

// Config is the engine config file shared by every command. Every field has
// a default that runs on embedded SQLite with nothing installed. The file is
// read strictly (package configfile): unknown keys and wrong types are errors
// with their position; the values are then checked by the packages that
// own them (store, wechat, engine, api) and here for the binary's own keys.
type Config struct {
	Database  store.Config  `yaml:"-"` // built from DBFile
	Facts     *store.Config `yaml:"-"` // built from FactsFile when it names a DSN
	DBFile    dbConfig      `yaml:"database"`
	FactsFile *factsConfig  `yaml:"facts"`
	WeChat    WeChatConfig  `yaml:"wechat"`
	Campaigns string        `yaml:"-"` // CampaignsFile.Dir
	HTTP      HTTPConfig    `yaml:"http"`
	Timezone  string        `yaml:"timezone"`
	Log       LogConfig     `yaml:"log"`
	Engine    EngineConfig  `yaml:"engine"`
	// Templates configures the template registry (templates sync).
	Templates TemplatesConfig `yaml:"templates"`
	// CampaignsFile is the campaigns key: the directory as a string, or a
	// mapping {dir, allow_empty}.
	CampaignsFile CampaignsConfig `yaml:"campaigns"`
	// Retention makes the daemon prune history.
	Retention RetentionConfig `yaml:"retention"`
	Console   ConsoleConfig   `yaml:"console"`
}

// ConsoleConfig configures the web console of `run` (docs/console.md).
type ConsoleConfig struct {
	// Listen is the console's own address; "" serves it on http.listen
	// (the API lives under /v1/).
	Listen string `yaml:"listen"`
	// Tokens are the console tokens (name, token, role viewer|operator);
	// none = no console.
	Tokens []console.Token `yaml:"tokens"`
}

// TemplatesConfig configures the template registry.
type TemplatesConfig struct {
	// Refresh is how often `run` syncs the registry from getTemplateList;
	// default 1h.
	Refresh time.Duration `yaml:"refresh"`
}

func (t TemplatesConfig) refresh() time.Duration {
	if t.Refresh == 0 {
		return time.Hour
	}
	return t.Refresh
}

// dbConfig is the database section: the store.
type dbConfig struct {
	Driver       string `yaml:"driver"`
	DSN          string `yaml:"dsn"`
	MaxOpenConns int    `yaml:"max_open_conns"`
	AutoMigrate  *bool  `yaml:"auto_migrate"`
}

// factsConfig is the facts section: where fact queries run and how.
type factsConfig struct {
	Driver       string `yaml:"driver"`
	DSN          string `yaml:"dsn"`
	MaxOpenConns int    `yaml:"max_open_conns"`
	// Timezone is the zone of the business data's DATETIME and DATE
	// values, which carry none; default UTC.
	Timezone string `yaml:"timezone"`
	// Timeout bounds each fact query; default 5s.
	Timeout time.Duration `yaml:"timeout"`
}

// WeChatConfig configures the WeChat client and dispatch.
type WeChatConfig struct {
	BaseURL     string        `yaml:"base_url"`
	AppID       string        `yaml:"appid"`
	Secret      string        `yaml:"secret"`
	State       string        `yaml:"state"`
	Lang        string        `yaml:"lang"`
	Rate        float64       `yaml:"rate"`
	Concurrency int           `yaml:"concurrency"`
	Timeout     time.Duration `yaml:"timeout"`
	MaxAttempts int           `yaml:"max_attempts"`
	RetryBase   time.Duration `yaml:"retry_base"`
	Ambiguous   string        `yaml:"ambiguous"`
	// ReconcileGrace is how long the reconcile policy waits for a delivery
	// event (message push) before it takes a send as not delivered.
	ReconcileGrace time.Duration `yaml:"reconcile_grace"`
	// PushToken is the token of the message-push URL (signature check).
	PushToken string `yaml:"push_token"`
	// CheckTemplates checks campaigns against the account's template list
	// (getTemplateList) before sending; default true.
	CheckTemplates *bool `yaml:"check_templates"`
	// Pages lists the mini program's page paths ("pages/goods/detail",
	// without query); when set, a campaign's page must render to one of
	// them. Empty: any well-formed page.
	Pages []string `yaml:"pages"`
}

func (w WeChatConfig) checkTemplates() bool { return w.CheckTemplates == nil || *w.CheckTemplates }

// HTTPConfig configures the API server of `run`.
type HTTPConfig struct {
	Listen       string   `yaml:"listen"`
	Token        string   `yaml:"token"`
	Tokens       []string `yaml:"tokens"`
	MaxTemplates int      `yaml:"max_templates"`
	MaxBody      int64    `yaml:"max_body"`
	// MaxTemplatesPerResult: api.Config.MaxTemplatesPerResult (validated there).
	MaxTemplatesPerResult int `yaml:"max_templates_per_result"`
	// OfferRejectCooldown and OfferHorizon: api.Config's (0: the defaults).
	OfferRejectCooldown time.Duration `yaml:"offer_reject_cooldown"`
	OfferHorizon        time.Duration `yaml:"offer_horizon"`
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"` // text | json
}

// EngineConfig tunes runs.
type EngineConfig struct {
	Lease time.Duration `yaml:"lease"`
	// SetAsideAfter: runs in a row a grant may fail the same way before a
	// campaign sets it aside; default 3, negative never.
	SetAsideAfter int `yaml:"set_aside_after"`
}

// CampaignsConfig is the campaigns key. Written as a plain string it is the
// directory.
type CampaignsConfig struct {
	Dir string `yaml:"dir"`
	// AllowEmpty lets the daemon start with, or reload to, a directory
	// without any campaign file; by default that is refused (a wrong path
	// or an empty mount would unschedule every campaign).
	AllowEmpty bool `yaml:"allow_empty"`
}

// UnmarshalYAML reads a directory string or a {dir, allow_empty} mapping.
func (c *CampaignsConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&c.Dir)
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Value != "dir" && k.Value != "allow_empty" {
				return fmt.Errorf("unknown key %q at line %d (want dir, allow_empty)", k.Value, k.Line)
			}
		}
	}
	type plain CampaignsConfig
	return n.Decode((*plain)(c))
}

// RetentionConfig makes the daemon prune history (see `wxcampaign prune`).
type RetentionConfig struct {
	// Keep is how much history stays; 0 (default) prunes nothing. At
	// least 24h.
	Keep time.Duration `yaml:"keep"`
	// Interval between two prunes; default 24h.
	Interval time.Duration `yaml:"interval"`
	// Batch is the rows deleted per transaction; default 1000.
	Batch int `yaml:"batch"`
}

// Environment variables that override the file (secrets belong here).
const (
	envDatabaseDriver = "WXC_DATABASE_DRIVER"
	envDatabaseDSN    = "WXC_DATABASE_DSN"
	envFactsDSN       = "WXC_FACTS_DSN"
	envAppID          = "WXC_WECHAT_APPID"
	envSecret         = "WXC_WECHAT_SECRET"
	envBaseURL        = "WXC_WECHAT_BASE_URL"
	envHTTPToken      = "WXC_HTTP_TOKEN"
	envPushToken      = "WXC_WECHAT_PUSH_TOKEN"
	envConsoleTokens  = "WXC_CONSOLE_TOKENS" // name:role:token,... added to console.tokens
)

func defaultConfig() Config {
	return Config{
		DBFile:    dbConfig{Driver: "sqlite", DSN: "wxcampaign.db"},
		WeChat:    WeChatConfig{State: "formal", Lang: "zh_CN", Concurrency: 64, Timeout: 5 * time.Second},
		Campaigns: "configs/campaigns",
		HTTP:      HTTPConfig{Listen: "127.0.0.1:8080", MaxTemplates: 3},
		Timezone:  "Asia/Shanghai",
		Log:       LogConfig{Level: "info", Format: "text"},
	}
}

// need names what a command requires beyond valid values.
type need int

const (
	needSend need = 1 << iota // wechat.appid and wechat.secret
	needAPI                   // at least one HTTP token
)

// loadConfig reads path (may be "" for defaults only), applies environment
// overrides from getenv and validates every value. Every problem is
// reported, as "file:line:col: key: message", in a *configfile.Error.
func loadConfig(path string, getenv func(string) string, needs need) (Config, error) {
	var data []byte
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return defaultConfig(), fmt.Errorf("config: %w", err)
		}
	}
	return parseConfig(path, data, getenv, needs)
}

// parseConfig is loadConfig on the file's bytes.
func parseConfig(path string, data []byte, getenv func(string) string, needs need) (Config, error) {
	cfg := defaultConfig()
	cfg.CampaignsFile.Dir = cfg.Campaigns
	d := configfile.New(path, data)
	d.Decode(&cfg)
	cfg.Campaigns = cfg.CampaignsFile.Dir
	env := func(name, key string, set func(string)) {
		if v := getenv(name); v != "" {
			set(v)
			d.SetFromEnv(key, name)
		}
	}
	env(envDatabaseDriver, "database.driver", func(v string) { cfg.DBFile.Driver = v })
	env(envDatabaseDSN, "database.dsn", func(v string) { cfg.DBFile.DSN = v })
	env(envFactsDSN, "facts.dsn", func(v string) {
		if cfg.FactsFile == nil {
			cfg.FactsFile = &factsConfig{}
		}
		cfg.FactsFile.DSN = v
	})
	env(envAppID, "wechat.appid", func(v string) { cfg.WeChat.AppID = v })
	env(envSecret, "wechat.secret", func(v string) { cfg.WeChat.Secret = v })
	env(envBaseURL, "wechat.base_url", func(v string) { cfg.WeChat.BaseURL = v })
	env(envPushToken, "wechat.push_token", func(v string) { cfg.WeChat.PushToken = v })
	env(envHTTPToken, "http.token", func(v string) { cfg.HTTP.Tokens = append(cfg.HTTP.Tokens, v) })
	if cfg.HTTP.Token != "" {
		cfg.HTTP.Tokens = append(cfg.HTTP.Tokens, cfg.HTTP.Token)
	}
	if v := getenv(envConsoleTokens); v != "" {
		d.SetFromEnv("console.tokens", envConsoleTokens)
		if ts, err := console.ParseTokens(v); err != nil {
			d.ErrorAt("console.tokens", "%v", err)
		} else {
			cfg.Console.Tokens = append(cfg.Console.Tokens, ts...)
		}
	}
	cfg.Database = store.Config{Driver: cfg.DBFile.Driver, DSN: cfg.DBFile.DSN, MaxOpenConns: cfg.DBFile.MaxOpenConns}
	if f := cfg.FactsFile; f != nil && f.DSN != "" {
		fc := store.Config{Driver: f.Driver, DSN: f.DSN, MaxOpenConns: f.MaxOpenConns}
		if fc.Driver == "" {
			fc.Driver = cfg.DBFile.Driver
		}
		cfg.Facts = &fc
	}
	if d.Decoded() {
		cfg.validate(d, needs)
	}
	return cfg, d.Err()
}

// validate hands each package its own config and maps the fields it names
// to the file's keys; the binary's own keys are checked here.
func (c Config) validate(d *configfile.Decoder, needs need) {
	d.Section(c.Database.Validate(), "database", nil)
	if c.Facts != nil {
		d.Section(c.Facts.Validate(), "facts", nil)
	}
	d.Section(c.factsConfig().Validate(), "facts", nil)
	d.Section(c.wechatConfig().Validate(), "wechat", nil)
	d.Section(c.engineConfig().Validate(), "wechat", map[string]string{"lease": "engine.lease"})
	tokens := "http.token"
	if d.Has("http.tokens") {
		tokens = "http.tokens"
	}
	d.Section(c.apiConfig().Validate(), "http", map[string]string{"tokens": tokens})

	if loc, err := time.LoadLocation(c.Timezone); err != nil || loc == time.Local || c.Timezone == "" {
		d.ErrorAt("timezone", "unknown time zone %q: use an IANA name such as Asia/Shanghai (Local is not allowed: the schedule must not depend on the host)", c.Timezone)
	}
	if _, err := logrus.ParseLevel(c.Log.Level); err != nil {
		d.ErrorAt("log.level", "unknown level %q: want trace, debug, info, warning, error, fatal or panic", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		d.ErrorAt("log.format", "unknown format %q: want text or json", c.Log.Format)
	}
	if err := console.CheckTokens(c.Console.Tokens); err != nil {
		d.ErrorAt("console.tokens", "%v", err)
	}
	if err := checkTemplatesConfig(c); err != nil {
		d.ErrorAt(err.key, "%s", err.msg)
	}
	if r := c.Retention; r.Keep != 0 && r.Keep < minRetention {
		d.ErrorAt("retention.keep", "must be 0 (keep everything) or at least %s, got %s", minRetention, r.Keep)
	}
	if c.Retention.Interval < 0 {
		d.ErrorAt("retention.interval", "must be positive, got %s", c.Retention.Interval)
	}
	if c.Retention.Batch < 0 {
		d.ErrorAt("retention.batch", "must be positive, got %d", c.Retention.Batch)
	}
	if strings.TrimSpace(c.Campaigns) == "" {
		d.ErrorAt("campaigns", "must name the campaigns directory")
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		d.ErrorAt("http.listen", "must be host:port such as 127.0.0.1:8080 or :8080, got %q", c.HTTP.Listen)
	}
	if needs&needSend != 0 {
		if c.WeChat.AppID == "" {
			d.ErrorAt("wechat.appid", "required to send: set it here or in %s", envAppID)
		}
		if c.WeChat.Secret == "" {
			d.ErrorAt("wechat.secret", "required to send: set it in %s (or here)", envSecret)
		}
	}
	if needs&needAPI != 0 && len(c.HTTP.Tokens) == 0 {
		d.ErrorAt("http.token", "required by run (the API refuses to start without authentication): set %s (or http.token)", envHTTPToken)
	}
}

// factsConfig is the store's view of the facts section.
func (c Config) factsConfig() store.FactsConfig {
	if c.FactsFile == nil {
		return store.FactsConfig{}
	}
	return store.FactsConfig{Timezone: c.FactsFile.Timezone, Timeout: c.FactsFile.Timeout}
}

// wechatConfig is the WeChat client's view of the config (the process's
// collaborators are added by app.client).
func (c Config) wechatConfig() wechat.Config {
	w := c.WeChat
	return wechat.Config{BaseURL: w.BaseURL, AppID: w.AppID, Secret: w.Secret, Timeout: w.Timeout}
}

// engineConfig is the engine's view of the config (logger and metrics are
// added by app.engine).
func (c Config) engineConfig() engine.Config {
	w := c.WeChat
	return engine.Config{
		AppID: w.AppID, State: w.State, Lang: w.Lang, Rate: w.Rate, Concurrency: w.Concurrency,
		MaxAttempts: w.MaxAttempts, RetryBase: w.RetryBase, Ambiguous: engine.AmbiguousPolicy(w.Ambiguous),
		ReconcileGrace: w.ReconcileGrace, Lease: c.Engine.Lease, SetAsideAfter: c.Engine.SetAsideAfter,
	}
}

// apiConfig is the HTTP API's view of the config.
func (c Config) apiConfig() api.Config {
	return api.Config{Tokens: c.HTTP.Tokens, MaxTemplates: c.HTTP.MaxTemplates, MaxTemplatesPerResult: c.HTTP.MaxTemplatesPerResult, MaxBody: c.HTTP.MaxBody, PushToken: c.WeChat.PushToken,
		OfferRejectCooldown: c.HTTP.OfferRejectCooldown, OfferHorizon: c.HTTP.OfferHorizon}
}

// autoMigrate reports whether commands migrate the store on start: yes by
// default (idempotent); set database.auto_migrate: false where a deploy
// step runs `migrate` instead.
func (c Config) autoMigrate() bool {
	return c.DBFile.AutoMigrate == nil || *c.DBFile.AutoMigrate
}

// isConfigError reports whether err is a problem of the config.
func isConfigError(err error) bool {
	var ce *configfile.Error
	return errors.As(err, &ce)
}
