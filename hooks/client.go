package hooks

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Defaults of Config's zero fields.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultMaxInFlight = 256
	DefaultMaxQueued   = 100
	DefaultBatchMax    = 100
	DefaultBatchWait   = 100 * time.Millisecond
	DefaultQueueMax    = 100_000
	DefaultRetryBase   = time.Second
	DefaultRetryMax    = 60 * time.Second
	DefaultMaxResponse = 1 << 20
)

// Config is what New needs. Zero numbers and durations take the Default values.
type Config struct {
	// URL is the backend's base URL: hooks are POSTed to URL + "/" + the hook's name.
	URL string
	// Secret keys every request's signature (Sign). Required.
	Secret string
	// Timeout bounds each request, from when it is sent to when its answer is read.
	Timeout time.Duration
	// MaxInFlight bounds the connect and event requests in flight at once; the HTTP client keeps
	// at most MaxInFlight+1 connections (the one more for the events webhook), idle ones included.
	MaxInFlight int
	// MaxQueued is how many events may wait per Forward key while one is in flight.
	MaxQueued int
	// BatchMax and BatchWait shape the events webhook's batches: a batch is sent when it has
	// BatchMax events or BatchWait after its first event was queued.
	BatchMax  int
	BatchWait time.Duration
	// QueueMax bounds the events waiting for the webhook (the batch being delivered aside);
	// beyond it the oldest are dropped.
	QueueMax int
	// RetryBase and RetryMax are the first and the longest wait before a failed batch is sent
	// again; the wait doubles in between.
	RetryBase time.Duration
	RetryMax  time.Duration
	// MaxResponse caps an answer's body in bytes; a longer one is invalid.
	MaxResponse int64
	// Logger receives the failures, as the "hooks" component. The zero Logger logs nothing.
	Logger zerolog.Logger
	// Registerer gets the metrics; nil registers none (they are still counted).
	Registerer prometheus.Registerer
	// HTTPClient, if set, sends every request as it is (tests); else Transport, if set, is used
	// under a client of ours; else a transport of ours.
	HTTPClient *http.Client
	Transport  http.RoundTripper
}

// Client calls one app backend. It is safe for concurrent use; Close releases it.
type Client struct {
	base        string // URL without a trailing "/"
	key         []byte // Config.Secret
	timeout     time.Duration
	maxResponse int64
	http        *http.Client
	log         *logger
	m           *metrics

	// ctx is the parent of every request; cancel is Close giving up.
	ctx    context.Context
	cancel context.CancelFunc
	// closing is closed when Close begins: no more work is accepted, queued work is flushed.
	closing   chan struct{}
	closeOnce sync.Once
	// wg counts the goroutines and the Connect calls that Close waits for.
	wg sync.WaitGroup
	// idle hands a key to a warm worker waiting for one; workers counts the workers, which end
	// when idle for workerIdle or at Close (forward.go).
	idle    chan func()
	workers sync.WaitGroup

	// slots bounds the connect and event requests in flight (MaxInFlight).
	slots chan struct{}

	// mu guards closed and keys, and wg.Add against Close's Wait.
	mu     sync.Mutex
	closed bool
	keys   map[string]*keyQueue
	// maxQueued is Config.MaxQueued.
	maxQueued int

	ev eventQueue
}

// New checks cfg and starts the events webhook's sender.
func New(cfg Config) (*Client, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("hooks: register metrics: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		base:        strings.TrimRight(cfg.URL, "/"),
		key:         []byte(cfg.Secret),
		timeout:     cfg.Timeout,
		maxResponse: cfg.MaxResponse,
		http:        cfg.httpClient(),
		log:         newLogger(cfg.Logger),
		m:           m,
		ctx:         ctx,
		cancel:      cancel,
		closing:     make(chan struct{}),
		slots:       make(chan struct{}, cfg.MaxInFlight),
		keys:        make(map[string]*keyQueue),
		idle:        make(chan func()),
		maxQueued:   cfg.MaxQueued,
	}
	c.ev.init(cfg)
	c.wg.Add(1)
	go c.runEvents()
	return c, nil
}

func (cfg *Config) setDefaults() error {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("hooks: URL must be an http:// or https:// URL without query or fragment")
	}
	if cfg.Secret == "" {
		return errors.New("hooks: Secret is required: every request is signed with it")
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"Timeout", &cfg.Timeout, DefaultTimeout},
		{"BatchWait", &cfg.BatchWait, DefaultBatchWait},
		{"RetryBase", &cfg.RetryBase, DefaultRetryBase},
		{"RetryMax", &cfg.RetryMax, DefaultRetryMax},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return fmt.Errorf("hooks: %s must not be negative", d.name)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	counts := []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxInFlight", &cfg.MaxInFlight, DefaultMaxInFlight},
		{"MaxQueued", &cfg.MaxQueued, DefaultMaxQueued},
		{"BatchMax", &cfg.BatchMax, DefaultBatchMax},
		{"QueueMax", &cfg.QueueMax, DefaultQueueMax},
	}
	for _, n := range counts {
		if *n.v < 0 {
			return fmt.Errorf("hooks: %s must not be negative", n.name)
		}
		if *n.v == 0 {
			*n.v = n.def
		}
	}
	if cfg.MaxResponse < 0 {
		return errors.New("hooks: MaxResponse must not be negative")
	}
	if cfg.MaxResponse == 0 {
		cfg.MaxResponse = DefaultMaxResponse
	}
	if cfg.RetryMax < cfg.RetryBase {
		return errors.New("hooks: RetryMax must not be below RetryBase")
	}
	return nil
}

func (cfg *Config) httpClient() *http.Client {
	if cfg.HTTPClient != nil {
		return cfg.HTTPClient
	}
	rt := cfg.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil // the backend is the operator's own; an environment proxy is not meant for it
		t.MaxConnsPerHost = cfg.MaxInFlight + 1
		t.MaxIdleConns = cfg.MaxInFlight + 1
		t.MaxIdleConnsPerHost = cfg.MaxInFlight + 1
		t.ResponseHeaderTimeout = 0 // the request's context bounds it
		rt = t
	}
	return &http.Client{
		Transport: rt,
		// A redirect would be followed with a GET and no body: the hook's answer is never there.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Close stops accepting work, lets queued forwards and connects finish and flushes the events
// queue until ctx ends, then cancels what is left (forwards get an *Error wrapping ErrClosed,
// events are dropped and counted), stops every goroutine and closes idle connections. It returns
// ctx's error if it had to cut work short. Call it after the sockets are gone: later events are
// dropped.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.ev.mu.Lock()
		c.ev.closed = true
		c.ev.mu.Unlock()
		close(c.closing)
	})
	idle := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(idle)
	}()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = fmt.Errorf("hooks: close: %w", ctx.Err())
	}
	c.cancel()
	<-idle
	c.workers.Wait()
	c.http.CloseIdleConnections()
	return err
}

// begin counts a Connect call for Close, unless Close began.
func (c *Client) begin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	return true
}

// acquire takes an in-flight slot, unless ctx or the Client ends first.
func (c *Client) acquire(ctx context.Context) error {
	select {
	case c.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return unavailable(outcomeCanceled, ctx.Err())
	case <-c.ctx.Done():
		return unavailable(outcomeCanceled, ErrClosed)
	}
}

func (c *Client) release() { <-c.slots }

// response is a hook's answer as read: its status and at most MaxResponse bytes of body.
type response struct {
	status int
	body   []byte
}

// post sends body to the hook and reads the answer. The error, an *Error, is for what no status
// can say: no answer in time, no connection, a body over the cap. A 5xx is an *Error too.
func (c *Client) post(parent context.Context, hook string, body []byte) (response, *Error) {
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/"+hook, bytes.NewReader(body))
	if err != nil {
		// The URL was checked by New; this is not reachable with a valid Config.
		return response{}, invalid(fmt.Errorf("build request: %w", err))
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, signaturePrefix+hex.EncodeToString(mac(c.key, ts, body)))

	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, c.transportError(parent, ctx, err)
	}
	defer resp.Body.Close()
	// Read one byte past the cap to tell a body of exactly the cap from a longer one, and stop
	// there: the rest is never read, and closing the body drops the connection.
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResponse+1))
	if err != nil {
		return response{}, c.transportError(parent, ctx, err)
	}
	if resp.StatusCode >= 500 {
		return response{status: resp.StatusCode}, unavailable(outcomeUnavailable, fmt.Errorf("status %d", resp.StatusCode))
	}
	if int64(len(data)) > c.maxResponse {
		return response{status: resp.StatusCode}, invalid(fmt.Errorf("answer over %d bytes", c.maxResponse))
	}
	return response{status: resp.StatusCode, body: data}, nil
}

// transportError names why a request got no answer: the Client closing, the caller giving up,
// its own timeout, or the connection. The URL is left out of the cause: it may carry credentials.
func (c *Client) transportError(parent, ctx context.Context, err error) *Error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	switch {
	case c.ctx.Err() != nil:
		return unavailable(outcomeCanceled, ErrClosed)
	case parent.Err() != nil:
		return unavailable(outcomeCanceled, parent.Err())
	case ctx.Err() != nil:
		return unavailable(outcomeTimeout, context.DeadlineExceeded)
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return unavailable(outcomeTimeout, err)
	}
	return unavailable(outcomeUnreachable, err)
}

// finish records a request's outcome and logs it if it failed; it returns err for chaining.
func (c *Client) finish(hook string, start time.Time, status int, err *Error) *Error {
	outcome := outcomeOK
	if err != nil {
		outcome = err.outcome
	}
	c.m.observe(hook, outcome, time.Since(start))
	if err != nil {
		c.log.failed(hook, outcome, status, err)
	}
	return err
}
