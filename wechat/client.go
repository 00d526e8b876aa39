// Package wechat is the client of the WeChat mini program server API used by
// the engine: access tokens (stable_token, shared across processes through a
// TokenStore), subscribeMessage.send, getTemplateList, jscode2session and the
// API quota; and the message push URL's side: VerifyPushSignature and
// ParsePush for the events WeChat posts (subscribe_msg_sent_event tells that
// a message whose send reply was lost did arrive).
//
// Every error is an *APIError with a Class that tells the caller what to do
// (retry, stop the campaign, mark the grant used up, ...). The client tells
// "nothing was delivered" apart from "the message may have arrived" with
// net/http/httptrace: an error before the request was written is retryable,
// one after it is ambiguous. The access token, the app secret and session
// keys never appear in an error text or a log line.
//
// Package wxsim beside it is a local WeChat stand-in for tests and demos.
package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/singleflight"
)

// DefaultBaseURL is WeChat's production API host.
const DefaultBaseURL = "https://api.weixin.qq.com"

// maxBody bounds how much of a response the client reads.
const maxBody = 4 << 20

// Config configures a Client. AppID and Secret are required.
type Config struct {
	BaseURL      string        // default DefaultBaseURL
	AppID        string        // the mini program's appid
	Secret       string        // the app secret; never logged
	HTTPClient   *http.Client  // default: a tuned keep-alive client
	Timeout      time.Duration // per request, default 5s
	Tokens       TokenStore    // optional cache shared across processes; nil = in-process only
	Holder       string        // this process's id for the token refresh lease; default a per-client unique id
	RefreshAhead time.Duration // refresh this long before expiry, default 5m (at most half the token's lifetime)
	Logger       logrus.FieldLogger
	Now          func() time.Time

	// OnTokenRefresh, if set, is called after each token fetched from WeChat.
	OnTokenRefresh func()
	// OnRetry, if set, is called before each automatic retry with a short
	// reason ("token").
	OnRetry func(reason string)
}

// Client calls the WeChat API. It is safe for concurrent use.
type Client struct {
	base    string
	appid   string
	secret  string
	hc      *http.Client
	timeout time.Duration
	store   TokenStore
	holder  string
	ahead   time.Duration
	// effAhead is ahead clamped to half the token lifetime, in nanoseconds.
	effAhead atomic.Int64
	log      logrus.FieldLogger
	now      func() time.Time
	onRef    func()
	onRetry  func(string)

	mu      sync.Mutex
	tok     string
	exp     time.Time // expiry of tok
	refresh time.Time // when tok should be refreshed
	bad     string    // the last token dropped on 40001/40014/42001
	group   singleflight.Group
	redacts atomic.Pointer[[]string] // recent tokens, for redaction
}

// New returns a Client for cfg, with defaults filled in.
func New(cfg Config) (*Client, error) {
	if cfg.AppID == "" {
		return nil, errors.New("wechat: new client: AppID is required")
	}
	if cfg.Secret == "" {
		return nil, errors.New("wechat: new client: Secret is required")
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("wechat: new client: BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	c := &Client{
		base:    base,
		appid:   cfg.AppID,
		secret:  cfg.Secret,
		hc:      cfg.HTTPClient,
		timeout: cfg.Timeout,
		store:   cfg.Tokens,
		holder:  cfg.Holder,
		ahead:   cfg.RefreshAhead,
		log:     cfg.Logger,
		now:     cfg.Now,
		onRef:   cfg.OnTokenRefresh,
		onRetry: cfg.OnRetry,
	}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	if c.hc == nil {
		c.hc = NewHTTPClient(c.timeout)
	}
	if c.ahead <= 0 {
		c.ahead = 5 * time.Minute
	}
	if c.log == nil {
		l := logrus.New()
		l.Out = io.Discard
		c.log = l
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.holder == "" {
		c.holder = fmt.Sprintf("wechat-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), holderSeq.Add(1))
	}
	c.effAhead.Store(int64(c.ahead))
	c.log = c.log.WithField("appid", c.appid)
	c.redacts.Store(&[]string{})
	return c, nil
}

// holderSeq makes default lease holder ids unique within a process.
var holderSeq atomic.Int64

// NewHTTPClient returns the tuned client New uses by default: keep-alive,
// a large idle pool per host and the given overall timeout.
func NewHTTPClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 512
	t.IdleConnTimeout = 90 * time.Second
	t.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{Transport: t, Timeout: timeout}
}

// AppID returns the appid the client calls for.
func (c *Client) AppID() string { return c.appid }

// secrets returns everything that must be redacted from texts.
func (c *Client) secrets() []string {
	s := *c.redacts.Load()
	out := make([]string, 0, len(s)+1)
	out = append(out, c.secret)
	return append(out, s...)
}

// remember adds tok to the tokens redacted from texts (the last few only).
func (c *Client) remember(tok string) {
	for {
		old := c.redacts.Load()
		for _, t := range *old {
			if t == tok {
				return
			}
		}
		n := append([]string{tok}, *old...)
		if len(n) > 4 {
			n = n[:4]
		}
		if c.redacts.CompareAndSwap(old, &n) {
			return
		}
	}
}

// envelope is the part of every WeChat reply the client reads first.
type envelope struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// request is one call to WeChat.
type request struct {
	op     string // the call's name in errors: "send", "token", ...
	method string
	path   string
	query  string // the query string without a leading "?"
	body   []byte // if not nil, sent as JSON
	out    any    // the 200 reply is decoded into it, if not nil
}

// call sends one request and decodes a 200 reply into q.out. It returns an
// *APIError for every failure.
func (c *Client) call(ctx context.Context, q request) error {
	op, method, path, query, body, out := q.op, q.method, q.path, q.query, q.body, q.out
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	}
	ctx = httptrace.WithClientTrace(ctx, trace)
	u := c.base + path
	if query != "" {
		u += "?" + query
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return &APIError{Op: op, Class: ClassConfig, Err: redactErr(err, c.secrets()...)}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		cl := ClassAmbiguous
		if !wrote.Load() {
			cl = ClassRetryable
		}
		return &APIError{Op: op, Class: cl, Err: redactErr(err, c.secrets()...)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode != http.StatusOK {
		return &APIError{Op: op, HTTPStatus: resp.StatusCode, Class: classOfStatus(resp.StatusCode)}
	}
	if err != nil {
		return &APIError{Op: op, Class: ClassAmbiguous, Err: redactErr(fmt.Errorf("read reply: %w", err), c.secrets()...)}
	}
	code, msg, err := decodeResponse(data, out)
	if err != nil {
		return &APIError{Op: op, Class: ClassAmbiguous, Err: redactErr(err, c.secrets()...)}
	}
	if code != 0 {
		return &APIError{Op: op, Code: code, Msg: redactString(msg, c.secrets()...), Class: ClassOfCode(code)}
	}
	return nil
}

// decodeResponse decodes a WeChat JSON reply: the errcode and errmsg, and,
// when errcode is 0 and out is not nil, the whole reply into out.
func decodeResponse(data []byte, out any) (code int, msg string, err error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return 0, "", fmt.Errorf("decode reply: %w", err)
	}
	if env.ErrCode != 0 {
		return env.ErrCode, env.ErrMsg, nil
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return 0, "", fmt.Errorf("decode reply: %w", err)
		}
	}
	return 0, env.ErrMsg, nil
}

// callWithToken runs call with the current access token and, when WeChat
// answers 40001, 40014 or 42001, drops the token, fetches a new one and
// retries once.
func (c *Client) callWithToken(ctx context.Context, q request) error {
	op := q.op
	for attempt := 0; ; attempt++ {
		tok, err := c.Token(ctx)
		if err != nil {
			return err
		}
		q.query = "access_token=" + url.QueryEscape(tok)
		err = c.call(ctx, q)
		if err == nil {
			return nil
		}
		var ae *APIError
		if !errors.As(err, &ae) || !isTokenCode(ae.Code) {
			return err
		}
		c.InvalidateToken(ctx, tok)
		if attempt > 0 {
			return err
		}
		c.log.WithFields(logrus.Fields{"op": op, "errcode": ae.Code}).Info("wechat: access token rejected, fetching a new one and retrying once")
		if c.onRetry != nil {
			c.onRetry("token")
		}
	}
}
