package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/wxcampaign/wxcampaign/store"
)

// Config is the engine config file shared by every command. Every field has
// a default that runs on embedded SQLite with nothing installed.
type Config struct {
	Database  store.Config  `yaml:"-"`
	Facts     *store.Config `yaml:"-"`
	DBFile    dbConfig      `yaml:"database"`
	FactsFile *dbConfig     `yaml:"facts"`
	WeChat    WeChatConfig  `yaml:"wechat"`
	Campaigns string        `yaml:"campaigns"`
	HTTP      HTTPConfig    `yaml:"http"`
	Timezone  string        `yaml:"timezone"`
	Log       LogConfig     `yaml:"log"`
	Engine    EngineConfig  `yaml:"engine"`
	// Templates configures the template registry (templates sync).
	Templates TemplatesConfig `yaml:"templates"`
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

type dbConfig struct {
	// Timezone (facts only) is the zone of the business data's DATETIME and
	// DATE values, which carry none; default UTC.
	Timezone     string `yaml:"timezone"`
	Driver       string `yaml:"driver"`
	DSN          string `yaml:"dsn"`
	MaxOpenConns int    `yaml:"max_open_conns"`
	AutoMigrate  *bool  `yaml:"auto_migrate"`
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
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"` // text | json
}

// EngineConfig tunes runs.
type EngineConfig struct {
	Lease time.Duration `yaml:"lease"`
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

// loadConfig reads path (may be "" for defaults only), applies environment
// overrides from getenv and validates.
func loadConfig(path string, getenv func(string) string) (Config, error) {
	cfg := defaultConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if v := getenv(envDatabaseDriver); v != "" {
		cfg.DBFile.Driver = v
	}
	if v := getenv(envDatabaseDSN); v != "" {
		cfg.DBFile.DSN = v
	}
	if v := getenv(envFactsDSN); v != "" {
		if cfg.FactsFile == nil {
			cfg.FactsFile = &dbConfig{Driver: cfg.DBFile.Driver}
		}
		cfg.FactsFile.DSN = v
	}
	if v := getenv(envAppID); v != "" {
		cfg.WeChat.AppID = v
	}
	if v := getenv(envSecret); v != "" {
		cfg.WeChat.Secret = v
	}
	if v := getenv(envBaseURL); v != "" {
		cfg.WeChat.BaseURL = v
	}
	if v := getenv(envPushToken); v != "" {
		cfg.WeChat.PushToken = v
	}
	if v := getenv(envHTTPToken); v != "" {
		cfg.HTTP.Tokens = append(cfg.HTTP.Tokens, v)
	}
	if cfg.HTTP.Token != "" {
		cfg.HTTP.Tokens = append(cfg.HTTP.Tokens, cfg.HTTP.Token)
	}
	switch cfg.DBFile.Driver {
	case "sqlite", "mysql":
	default:
		return cfg, fmt.Errorf("config: database.driver %q: want sqlite or mysql", cfg.DBFile.Driver)
	}
	cfg.Database = store.Config{Driver: cfg.DBFile.Driver, DSN: cfg.DBFile.DSN, MaxOpenConns: cfg.DBFile.MaxOpenConns}
	if cfg.FactsFile != nil && cfg.FactsFile.Timezone != "" {
		if _, err := time.LoadLocation(cfg.FactsFile.Timezone); err != nil {
			return cfg, fmt.Errorf("config: facts.timezone %q: %w", cfg.FactsFile.Timezone, err)
		}
	}
	if cfg.FactsFile != nil && cfg.FactsFile.DSN != "" {
		f := store.Config{Driver: cfg.FactsFile.Driver, DSN: cfg.FactsFile.DSN, MaxOpenConns: cfg.FactsFile.MaxOpenConns}
		if f.Driver == "" {
			f.Driver = cfg.DBFile.Driver
		}
		cfg.Facts = &f
	}
	if _, err := time.LoadLocation(cfg.Timezone); err != nil {
		return cfg, fmt.Errorf("config: timezone %q: %w", cfg.Timezone, err)
	}
	switch cfg.Log.Format {
	case "text", "json":
	default:
		return cfg, fmt.Errorf("config: log.format %q: want text or json", cfg.Log.Format)
	}
	if err := checkTemplatesConfig(cfg); err != nil {
		return cfg, err
	}
	switch cfg.WeChat.Ambiguous {
	case "", "consume", "retry", "reconcile":
	default:
		return cfg, fmt.Errorf("config: wechat.ambiguous %q: want consume, retry or reconcile", cfg.WeChat.Ambiguous)
	}
	return cfg, nil
}

// autoMigrate reports whether commands migrate the store on start: yes by
// default (idempotent); set database.auto_migrate: false where a deploy
// step runs `migrate` instead.
func (c Config) autoMigrate() bool {
	return c.DBFile.AutoMigrate == nil || *c.DBFile.AutoMigrate
}
