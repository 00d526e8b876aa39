package wxsim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxcampaign/wxcampaign/wechat"
)

// Push defaults.
const (
	defaultPushWorkers  = 4
	defaultPushQueue    = 10_000
	defaultPushRetries  = 5
	defaultPushBackoff  = 50 * time.Millisecond
	defaultPushTimeout  = 5 * time.Second
	defaultPushUserName = "gh_wxsim"
	maxPushBackoff      = 2 * time.Second
)

// pushJob is one subscribe_msg_sent_event to post.
type pushJob struct {
	openid, templateID string
	msgID              int64
	at                 int64 // delivery time, unix seconds
}

// pusher posts subscribe_msg_sent_event pushes to Config.PushURL from a few
// goroutines fed by a bounded queue.
type pusher struct {
	now     func() time.Time
	base    string // PushURL followed by '?' or '&'
	token   string
	toUser  string
	client  *http.Client
	retries int
	backoff time.Duration

	queue  chan pushJob
	mu     sync.RWMutex // enqueue holds it shared; close exclusively
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	pending atomic.Int64 // enqueued and not yet finished
	idleMu  sync.Mutex
	idle    chan struct{} // closed when pending reaches 0; nil when nobody waits

	pushed, failed, dropped, retried atomic.Int64
}

func newPusher(cfg Config, now func() time.Time) (*pusher, error) {
	u, err := url.Parse(cfg.PushURL)
	if err != nil {
		return nil, fmt.Errorf("push url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("push url %q: want http(s)://host/path", cfg.PushURL)
	}
	if cfg.PushToken == "" {
		return nil, fmt.Errorf("PushToken is required with PushURL")
	}
	u.Fragment = ""
	base := u.String()
	if u.RawQuery == "" {
		base += "?"
	} else {
		base += "&"
	}
	workers := cfg.PushWorkers
	if workers <= 0 {
		workers = defaultPushWorkers
	}
	qlen := cfg.PushQueue
	if qlen <= 0 {
		qlen = defaultPushQueue
	}
	retries := cfg.PushRetries
	if retries == 0 {
		retries = defaultPushRetries
	}
	retries = max(0, retries) // negative: no retry
	backoff := cfg.PushBackoff
	if backoff <= 0 {
		backoff = defaultPushBackoff
	}
	timeout := cfg.PushTimeout
	if timeout <= 0 {
		timeout = defaultPushTimeout
	}
	toUser := cfg.PushUserName
	if toUser == "" {
		toUser = defaultPushUserName
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = workers
	p := &pusher{
		now: now, base: base, token: cfg.PushToken, toUser: toUser,
		client:  &http.Client{Transport: tr, Timeout: timeout},
		retries: retries, backoff: backoff,
		queue: make(chan pushJob, qlen),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p, nil
}

// enqueue queues one push; a full queue or a closed pusher drops it.
func (p *pusher) enqueue(j pushJob) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.dropped.Add(1)
		return
	}
	p.pending.Add(1)
	select {
	case p.queue <- j:
	default:
		p.dropped.Add(1)
		p.done()
	}
}

// done marks one queued push finished and wakes FlushPushes at zero.
func (p *pusher) done() {
	if p.pending.Add(-1) != 0 {
		return
	}
	p.idleMu.Lock()
	if p.idle != nil && p.pending.Load() == 0 {
		close(p.idle)
		p.idle = nil
	}
	p.idleMu.Unlock()
}

// flush waits until nothing is pending or ctx ends.
func (p *pusher) flush(ctx context.Context) error {
	for {
		p.idleMu.Lock()
		if p.pending.Load() == 0 {
			p.idleMu.Unlock()
			return nil
		}
		if p.idle == nil {
			p.idle = make(chan struct{})
		}
		ch := p.idle
		p.idleMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *pusher) work() {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case j := <-p.queue:
			p.deliver(j)
			p.done()
		}
	}
}

// deliver posts one push, retrying a failure with a doubling backoff.
func (p *pusher) deliver(j pushJob) {
	body := p.encode(j)
	for attempt := 0; ; attempt++ {
		err := p.post(body)
		if err == nil {
			p.pushed.Add(1)
			return
		}
		if p.ctx.Err() != nil {
			p.dropped.Add(1) // stopped by Close
			return
		}
		if attempt >= p.retries {
			p.failed.Add(1)
			return
		}
		p.retried.Add(1)
		sleep(p.ctx, min(maxPushBackoff, p.backoff<<attempt))
	}
}

// encode writes the event as WeChat's JSON push: List an object, MsgID and
// ErrorCode strings, CreateTime a number.
func (p *pusher) encode(j pushJob) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"ToUserName":`...)
	b = appendJSONString(b, p.toUser)
	b = append(b, `,"FromUserName":`...)
	b = appendJSONString(b, j.openid)
	b = append(b, `,"CreateTime":`...)
	b = strconv.AppendInt(b, j.at, 10)
	b = append(b, `,"MsgType":"event","Event":"`+wechat.EventSubscribeSent+`","List":{"TemplateId":`...)
	b = appendJSONString(b, j.templateID)
	b = append(b, `,"MsgID":"`...)
	b = strconv.AppendInt(b, j.msgID, 10)
	b = append(b, `","ErrorCode":"0","ErrorStatus":"success"}}`...)
	return b
}

// post sends one signed push; any transport error or a non-2xx status is
// a failure.
func (p *pusher) post(body []byte) error {
	ts := strconv.FormatInt(p.now().Unix(), 10)
	nonce := strconv.FormatUint(uint64(rand.Uint32()), 10)
	u := p.base + "signature=" + wechat.SignPush(p.token, ts, nonce) + "&timestamp=" + ts + "&nonce=" + nonce
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // only to reuse the connection
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("push: HTTP %d", resp.StatusCode)
	}
	return nil
}

// close stops the workers, abandoning queued and in-flight pushes (counted
// as dropped). It is safe to call twice.
func (p *pusher) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	for {
		select {
		case <-p.queue:
			p.dropped.Add(1)
			p.done()
		default:
			p.client.CloseIdleConnections()
			return
		}
	}
}

func (p *pusher) reset() {
	p.pushed.Store(0)
	p.failed.Store(0)
	p.dropped.Store(0)
	p.retried.Store(0)
}

// FlushPushes waits until every queued push has been posted, has failed
// after its retries or was abandoned by Close, or until ctx ends. Without
// Config.PushURL it returns at once.
func (s *Server) FlushPushes(ctx context.Context) error {
	if s.push == nil {
		return nil
	}
	if err := s.push.flush(ctx); err != nil {
		return fmt.Errorf("wxsim: flush pushes: %w", err)
	}
	return nil
}

// Close stops the pusher; pushes still queued or in flight are abandoned
// (Stats.PushDropped). The WeChat API handler keeps working, without
// pushes. A second Close does nothing. It always returns nil.
func (s *Server) Close() error {
	if s.push != nil {
		s.push.close()
	}
	return nil
}
