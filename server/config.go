package server

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
)

// Config holds every setting of SPEC §1. Build it with LoadConfig or DefaultConfig.
type Config struct {
	Addr           string
	CORSOrigins    []string
	PingInterval   time.Duration
	PingTimeout    time.Duration
	MaxPayload     int64
	RecoveryWindow time.Duration
	APIKeys        []string
	JWTSecret      string
	JWTPublicKey   string // path to a PEM file
	JWTIssuer      string
	JWTAudience    string
	Adapter        string
	RedisURL       string
	ChatHistory    int
	LogLevel       zerolog.Level
	LogFormat      string
	ShutdownGrace  time.Duration
	// DrainDelay is how long /readyz answers 503 after SIGINT/SIGTERM while everything else is
	// still served, so that a load balancer stops sending clients before their sockets close.
	DrainDelay time.Duration
	// RecoveryMaxMiB bounds the memory of the connection state recovery buffer; beyond it the
	// oldest packets go (a session that needed them reconnects with recovered: false).
	RecoveryMaxMiB int64
	Conformance    bool
	// Parser is which Socket.IO parsers clients may use: ParserAuto, ParserDefault or
	// ParserMsgpack.
	Parser string
	// HookURL is the app backend's base URL (SPEC §8); empty = no hooks. HookSecret signs every
	// hook request (required with HookURL), HookTimeout bounds each one.
	HookURL     string
	HookSecret  string
	HookTimeout time.Duration
	// HookConnect asks the backend at every namespace CONNECT (SPEC §8.1).
	HookConnect bool
	// HookHeaders are the handshake headers forwarded to the connect hook: lower-case, without
	// duplicates, never authorization.
	HookHeaders []string
	// Namespaces are the extra namespaces whose events all go to the backend (SPEC §8.2).
	Namespaces []string
	// RelayTick is the coalescing period of keyed /relay messages (SPEC §9).
	RelayTick time.Duration
	// AdminUser and AdminPasswordHash (bcrypt) guard /admin (SPEC §10); an empty hash = no /admin.
	// AdminMode is AdminModeProduction or AdminModeDevelopment. AdminServerID names this node in
	// the admin UI (server_stats' serverId; empty = hostname#pid): every node needs its own.
	AdminUser         string
	AdminPasswordHash string
	AdminMode         string
	AdminServerID     string
	WebDir            string // the built demo page served at "/"; empty = DefaultWebDir when built
	Limits            Limits
	// PprofAddr serves net/http/pprof on its own listener when set (never on the public one).
	PprofAddr string
	// GCPercent and MemoryLimitMiB are the Go runtime's GOGC and GOMEMLIMIT, GCFloorMiB the
	// smallest heap goal its collector gets (TuneRuntime).
	GCPercent      int
	GCFloorMiB     int64
	MemoryLimitMiB int64

	// bodyTimeout shortens the HTTP API's body deadline in tests; 0 = bodyTimeout (SPEC §6).
	bodyTimeout time.Duration
}

// Adapter names accepted by --adapter.
const (
	AdapterMemory       = "memory"
	AdapterRedis        = "redis"
	AdapterRedisStreams = "redis-streams"
	// AdapterRedisSharded is Redis 7 sharded pub/sub (SSUBSCRIBE), for Redis Cluster.
	AdapterRedisSharded = "redis-sharded"
)

// Parser settings accepted by --parser.
const (
	// ParserAuto lets each connection use the parser its first packet shows.
	ParserAuto = "auto"
	// ParserDefault is Socket.IO's default JSON parser only.
	ParserDefault = "default"
	// ParserMsgpack is socket.io-msgpack-parser's only.
	ParserMsgpack = "msgpack"
)

// Admin UI modes accepted by --admin-mode.
const (
	AdminModeProduction = "production"
	// AdminModeDevelopment also streams every socket and event to the admin UI.
	AdminModeDevelopment = "development"
)

// DefaultConfig returns the SPEC defaults. Tests start from it and set Addr to 127.0.0.1:0.
func DefaultConfig() Config {
	return Config{
		Addr:           ":3000",
		CORSOrigins:    []string{"*"},
		PingInterval:   25 * time.Second,
		PingTimeout:    20 * time.Second,
		MaxPayload:     1_000_000,
		RecoveryWindow: 2 * time.Minute,
		Adapter:        AdapterMemory,
		RedisURL:       "redis://127.0.0.1:6379/0",
		ChatHistory:    100,
		LogLevel:       zerolog.InfoLevel,
		LogFormat:      "auto",
		ShutdownGrace:  10 * time.Second,
		DrainDelay:     2 * time.Second,
		RecoveryMaxMiB: 256,
		Parser:         ParserAuto,
		HookTimeout:    5 * time.Second,
		RelayTick:      50 * time.Millisecond,
		AdminUser:      "admin",
		AdminMode:      AdminModeProduction,
		Limits:         DefaultLimits(),
		GCPercent:      DefaultGCPercent,
		GCFloorMiB:     DefaultGCFloorMiB,
	}
}

// ConfigError names the setting that was refused and why.
type ConfigError struct {
	Setting string // the flag name, e.g. "--ping-interval"
	Source  string // "flag" or the environment variable it came from
	Reason  string
}

func (e *ConfigError) Error() string {
	if e.Source != "" && e.Source != "flag" {
		return fmt.Sprintf("invalid %s (from %s): %s", e.Setting, e.Source, e.Reason)
	}
	return fmt.Sprintf("invalid %s: %s", e.Setting, e.Reason)
}

// ErrHelp is returned by LoadConfig when -h or --help was asked for; the usage was written to the output.
var ErrHelp = flag.ErrHelp

// EnvPrefix starts every environment variable that configures Switchboard.
const EnvPrefix = "SWITCHBOARD_"

// envName turns a flag name into its environment variable: ping-interval → SWITCHBOARD_PING_INTERVAL.
func envName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// LoadConfig builds a Config from command-line arguments and environment variables; a flag wins over
// its variable. It is a pure function of its inputs, so tests pass a map's lookup as getenv. Usage
// and parse errors go to usage (io.Discard when nil).
func LoadConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	cfg := DefaultConfig()
	if usage == nil {
		usage = io.Discard
	}
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned as one ConfigError line, not printed here
	fs.Usage = func() {}

	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address")
	fs.Var((*listValue)(&cfg.CORSOrigins), "cors-origins", "comma list of allowed browser origins (* = any)")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", cfg.PingInterval, "Engine.IO heartbeat interval")
	fs.DurationVar(&cfg.PingTimeout, "ping-timeout", cfg.PingTimeout, "Engine.IO heartbeat timeout")
	fs.Int64Var(&cfg.MaxPayload, "max-payload", cfg.MaxPayload, "bytes per Engine.IO message / HTTP body")
	fs.DurationVar(&cfg.RecoveryWindow, "recovery-window", cfg.RecoveryWindow, "connection state recovery window; 0 turns it off")
	fs.Var((*listValue)(&cfg.APIKeys), "api-keys", "comma list of HTTP API keys; empty disables the API")
	fs.StringVar(&cfg.JWTSecret, "jwt-secret", cfg.JWTSecret, "HS256 secret")
	fs.StringVar(&cfg.JWTPublicKey, "jwt-public-key", cfg.JWTPublicKey, "PEM file with an RS256/ES256/EdDSA public key")
	fs.StringVar(&cfg.JWTIssuer, "jwt-issuer", cfg.JWTIssuer, "required iss claim")
	fs.StringVar(&cfg.JWTAudience, "jwt-audience", cfg.JWTAudience, "required aud claim")
	fs.StringVar(&cfg.Adapter, "adapter", cfg.Adapter, "memory, redis, redis-streams or redis-sharded")
	fs.StringVar(&cfg.RedisURL, "redis-url", cfg.RedisURL, "Redis URL for the redis adapters")
	fs.IntVar(&cfg.ChatHistory, "chat-history", cfg.ChatHistory, "messages kept per chat room")
	fs.Var((*levelValue)(&cfg.LogLevel), "log-level", "trace, debug, info, warn, error")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "auto, json or console")
	fs.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", cfg.ShutdownGrace, "drain time on SIGINT/SIGTERM")
	fs.DurationVar(&cfg.DrainDelay, "drain-delay", cfg.DrainDelay, "on SIGINT/SIGTERM, time /readyz answers 503 before sockets are closed")
	fs.Int64Var(&cfg.RecoveryMaxMiB, "recovery-max-mib", cfg.RecoveryMaxMiB, "memory bound of the connection state recovery buffer in MiB")
	fs.BoolVar(&cfg.Conformance, "conformance", cfg.Conformance, "serve what the official protocol test suites expect")
	fs.StringVar(&cfg.Parser, "parser", cfg.Parser, "auto (per connection), default or msgpack")
	fs.StringVar(&cfg.HookURL, "hook-url", cfg.HookURL, "base URL of the app backend's hooks; empty = no hooks")
	fs.StringVar(&cfg.HookSecret, "hook-secret", cfg.HookSecret, "HMAC-SHA256 key signing every hook request; required with --hook-url")
	fs.DurationVar(&cfg.HookTimeout, "hook-timeout", cfg.HookTimeout, "time per hook request")
	fs.BoolVar(&cfg.HookConnect, "hook-connect", cfg.HookConnect, "ask the backend at every namespace connect")
	fs.Var((*headerListValue)(&cfg.HookHeaders), "hook-headers", "comma list of handshake headers forwarded to the connect hook (never authorization)")
	fs.Var((*listValue)(&cfg.Namespaces), "namespaces", "comma list of extra namespaces whose events go to the backend; needs --hook-url")
	fs.DurationVar(&cfg.RelayTick, "relay-tick", cfg.RelayTick, "coalescing period of keyed /relay messages")
	fs.StringVar(&cfg.AdminUser, "admin-user", cfg.AdminUser, "user of the admin UI at /admin")
	fs.StringVar(&cfg.AdminPasswordHash, "admin-password-hash", cfg.AdminPasswordHash, "bcrypt hash of the admin UI's password; empty = no /admin")
	fs.StringVar(&cfg.AdminMode, "admin-mode", cfg.AdminMode, "production, or development (also streams every socket and event to the admin UI)")
	fs.StringVar(&cfg.AdminServerID, "admin-server-id", cfg.AdminServerID, "this node's name in the admin UI; empty = hostname#pid")
	fs.StringVar(&cfg.WebDir, "web-dir", cfg.WebDir, "directory of the built demo page served at / (empty: client-js/dist when built)")
	cfg.Limits.flags(fs)
	fs.StringVar(&cfg.PprofAddr, "pprof-addr", cfg.PprofAddr, "serve net/http/pprof on this address (e.g. 127.0.0.1:6060); empty = off")
	fs.IntVar(&cfg.GCPercent, "gc-percent", cfg.GCPercent, "Go garbage collector target, as GOGC (which wins when set)")
	fs.Int64Var(&cfg.GCFloorMiB, "gc-floor-mib", cfg.GCFloorMiB, "smallest heap goal of the Go garbage collector in MiB, so that a small live heap is not collected many times a second; 0 = the runtime's (off while GOGC is set)")
	fs.Int64Var(&cfg.MemoryLimitMiB, "memory-limit-mib", cfg.MemoryLimitMiB, "soft memory limit of the Go runtime in MiB, as GOMEMLIMIT (which wins when set); 0 = none")

	// Environment first, so that flags parsed afterwards win.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if envErr != nil {
			return
		}
		name := envName(f.Name)
		v := getenv(name)
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = &ConfigError{Setting: "--" + f.Name, Source: name, Reason: cleanParseError(err)}
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(usage, "Usage: switchboard [flags]; every flag is also an environment variable SWITCHBOARD_<FLAG>.")
			fs.SetOutput(usage)
			fs.PrintDefaults()
			return cfg, ErrHelp
		}
		return cfg, flagParseError(err)
	}
	if fs.NArg() > 0 {
		return cfg, &ConfigError{Setting: "arguments", Reason: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return cfg, cfg.Validate()
}

// Validate checks the values that parse but make no sense.
func (c Config) Validate() error {
	bad := func(setting, format string, args ...any) error {
		return &ConfigError{Setting: "--" + setting, Reason: fmt.Sprintf(format, args...)}
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return bad("addr", "%q is not host:port", c.Addr)
	}
	if len(c.CORSOrigins) == 0 {
		return bad("cors-origins", "needs at least one origin (use * for any)")
	}
	for _, o := range c.CORSOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return bad("cors-origins", "%q is not an origin like https://app.example.com", o)
		}
	}
	if c.PingInterval <= 0 {
		return bad("ping-interval", "must be positive")
	}
	if c.PingTimeout <= 0 {
		return bad("ping-timeout", "must be positive")
	}
	if c.MaxPayload <= 0 {
		return bad("max-payload", "must be a positive number of bytes")
	}
	if c.RecoveryWindow < 0 {
		return bad("recovery-window", "must be 0 (off) or positive")
	}
	if c.GCPercent <= 0 {
		return bad("gc-percent", "must be positive")
	}
	if c.GCFloorMiB < 0 {
		return bad("gc-floor-mib", "must be 0 (none) or positive")
	}
	if c.MemoryLimitMiB < 0 {
		return bad("memory-limit-mib", "must be 0 (none) or positive")
	}
	switch c.Adapter {
	case AdapterMemory, AdapterRedis, AdapterRedisStreams, AdapterRedisSharded:
	default:
		return bad("adapter", "%q is not one of memory, redis, redis-streams, redis-sharded", c.Adapter)
	}
	if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return bad("redis-url", "%q is not a redis:// or rediss:// URL", c.RedisURL)
	}
	if c.ChatHistory < 0 {
		return bad("chat-history", "must be 0 or more")
	}
	switch c.LogFormat {
	case "auto", "json", "console":
	default:
		return bad("log-format", "%q is not one of auto, json, console", c.LogFormat)
	}
	if c.PprofAddr != "" {
		if _, _, err := net.SplitHostPort(c.PprofAddr); err != nil {
			return bad("pprof-addr", "%q is not host:port", c.PprofAddr)
		}
	}
	if c.ShutdownGrace < 0 {
		return bad("shutdown-grace", "must be 0 or more")
	}
	if c.DrainDelay < 0 {
		return bad("drain-delay", "must be 0 or more")
	}
	if c.RecoveryMaxMiB <= 0 {
		return bad("recovery-max-mib", "must be a positive number of MiB (the buffer is always bounded)")
	}
	switch c.Parser {
	case ParserAuto, ParserDefault, ParserMsgpack:
	default:
		return bad("parser", "%q is not one of auto, default, msgpack", c.Parser)
	}
	if c.RelayTick <= 0 {
		return bad("relay-tick", "must be positive")
	}
	if err := c.validateHooks(bad); err != nil {
		return err
	}
	if err := c.validateAdmin(bad); err != nil {
		return err
	}
	if err := c.Limits.validate(bad); err != nil {
		return err
	}
	return c.validateJWT()
}

// validateAdmin checks the admin UI settings (SPEC §10). The hash is never echoed.
func (c Config) validateAdmin(bad func(setting, format string, args ...any) error) error {
	switch c.AdminMode {
	case AdminModeProduction, AdminModeDevelopment:
	default:
		return bad("admin-mode", "%q is not one of production, development", c.AdminMode)
	}
	if c.AdminPasswordHash == "" {
		if c.AdminMode == AdminModeDevelopment {
			return bad("admin-mode", "development needs --admin-password-hash: without it there is no /admin")
		}
		if c.AdminServerID != "" {
			return bad("admin-server-id", "needs --admin-password-hash: without it there is no /admin")
		}
		return nil
	}
	if _, err := bcrypt.Cost([]byte(c.AdminPasswordHash)); err != nil {
		return bad("admin-password-hash", "is not a bcrypt hash ($2a$, $2b$ or $2y$, e.g. from htpasswd -nbBC 12 admin <password>)")
	}
	if strings.TrimSpace(c.AdminUser) == "" {
		return bad("admin-user", "must not be empty when --admin-password-hash is set")
	}
	return nil
}

// flagParseError turns the flag package's message into a ConfigError naming the flag.
func flagParseError(err error) error {
	msg := err.Error()
	// "invalid value \"x\" for flag -name: reason"
	if i := strings.Index(msg, " for flag -"); i >= 0 {
		rest := msg[i+len(" for flag -"):]
		name, reason, _ := strings.Cut(rest, ": ")
		return &ConfigError{Setting: "--" + name, Source: "flag", Reason: fmt.Sprintf("%s: %s", strings.TrimPrefix(msg[:i], "invalid value "), reason)}
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return &ConfigError{Setting: "--" + strings.TrimLeft(name, "-"), Reason: "unknown flag"}
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return &ConfigError{Setting: "--" + strings.TrimLeft(name, "-"), Reason: "needs a value"}
	}
	return &ConfigError{Setting: "arguments", Reason: msg}
}

// cleanParseError strips the flag package's wrapping from a Set error.
func cleanParseError(err error) string {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return fmt.Sprintf("%q is not a valid number", ne.Num)
	}
	return err.Error()
}

// listValue is a comma-separated list flag; blanks are dropped.
type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }

func (l *listValue) Set(s string) error {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	*l = out
	return nil
}

// levelValue is a zerolog level flag.
type levelValue zerolog.Level

func (l *levelValue) String() string { return zerolog.Level(*l).String() }

func (l *levelValue) Set(s string) error {
	lvl, err := zerolog.ParseLevel(strings.ToLower(s))
	if err != nil || s == "" || lvl == zerolog.NoLevel {
		return fmt.Errorf("%q is not one of trace, debug, info, warn, error", s)
	}
	*l = levelValue(lvl)
	return nil
}
