package server

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig(nil, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if !reflect.DeepEqual(cfg, DefaultConfig()) {
		t.Fatalf("defaults differ:\n got %+v\nwant %+v", cfg, DefaultConfig())
	}
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{
			name:  "flag sets addr",
			args:  []string{"--addr", "127.0.0.1:4000"},
			check: func(t *testing.T, c Config) { eq(t, c.Addr, "127.0.0.1:4000") },
		},
		{
			name:  "env sets addr",
			env:   map[string]string{"SWITCHBOARD_ADDR": ":4001"},
			check: func(t *testing.T, c Config) { eq(t, c.Addr, ":4001") },
		},
		{
			name:  "flag wins over env",
			args:  []string{"--ping-interval=3s"},
			env:   map[string]string{"SWITCHBOARD_PING_INTERVAL": "7s"},
			check: func(t *testing.T, c Config) { eq(t, c.PingInterval, 3*time.Second) },
		},
		{
			name: "lists are trimmed and blanks dropped",
			args: []string{"--cors-origins", "https://a.example, https://b.example:8443 ,", "--api-keys=k1,k2"},
			check: func(t *testing.T, c Config) {
				eq(t, c.CORSOrigins, []string{"https://a.example", "https://b.example:8443"})
				eq(t, c.APIKeys, []string{"k1", "k2"})
			},
		},
		{
			name: "garbage collector settings",
			args: []string{"--gc-percent=150", "--gc-floor-mib=0"},
			env:  map[string]string{"SWITCHBOARD_MEMORY_LIMIT_MIB": "512"},
			check: func(t *testing.T, c Config) {
				eq(t, c.GCPercent, 150)
				eq(t, c.GCFloorMiB, int64(0))
				eq(t, c.MemoryLimitMiB, int64(512))
			},
		},
		{
			name:  "recovery window 0 turns recovery off",
			env:   map[string]string{"SWITCHBOARD_RECOVERY_WINDOW": "0"},
			check: func(t *testing.T, c Config) { eq(t, c.RecoveryWindow, time.Duration(0)) },
		},
		{
			name:  "web dir from env, flag wins",
			args:  []string{"--web-dir", "/srv/page"},
			env:   map[string]string{"SWITCHBOARD_WEB_DIR": "/tmp/other"},
			check: func(t *testing.T, c Config) { eq(t, c.WebDir, "/srv/page") },
		},
		{
			name:  "web dir from env",
			env:   map[string]string{"SWITCHBOARD_WEB_DIR": "web/dist"},
			check: func(t *testing.T, c Config) { eq(t, c.WebDir, "web/dist") },
		},
		{
			name: "every setting from the environment",
			env: map[string]string{
				"SWITCHBOARD_PING_TIMEOUT":    "5s",
				"SWITCHBOARD_MAX_PAYLOAD":     "2048",
				"SWITCHBOARD_JWT_SECRET":      "s3cret",
				"SWITCHBOARD_JWT_ISSUER":      "iss",
				"SWITCHBOARD_JWT_AUDIENCE":    "aud",
				"SWITCHBOARD_ADAPTER":         "redis-streams",
				"SWITCHBOARD_REDIS_URL":       "redis://10.0.0.1:6380/2",
				"SWITCHBOARD_CHAT_HISTORY":    "7",
				"SWITCHBOARD_LOG_LEVEL":       "DEBUG",
				"SWITCHBOARD_LOG_FORMAT":      "console",
				"SWITCHBOARD_SHUTDOWN_GRACE":  "1m",
				"SWITCHBOARD_CONFORMANCE":     "true",
				"SWITCHBOARD_JWT_PUBLIC_KEY":  "/etc/key.pem",
				"SWITCHBOARD_PING_INTERVAL":   "1s",
				"SWITCHBOARD_CORS_ORIGINS":    "http://localhost:5173",
				"SWITCHBOARD_RECOVERY_WINDOW": "30s",
				"SWITCHBOARD_PPROF_ADDR":      "127.0.0.1:6060",
			},
			check: func(t *testing.T, c Config) {
				eq(t, c.PingTimeout, 5*time.Second)
				eq(t, c.MaxPayload, int64(2048))
				eq(t, c.JWTSecret, "s3cret")
				eq(t, c.JWTIssuer, "iss")
				eq(t, c.JWTAudience, "aud")
				eq(t, c.Adapter, "redis-streams")
				eq(t, c.RedisURL, "redis://10.0.0.1:6380/2")
				eq(t, c.ChatHistory, 7)
				eq(t, c.LogLevel, zerolog.DebugLevel)
				eq(t, c.LogFormat, "console")
				eq(t, c.ShutdownGrace, time.Minute)
				eq(t, c.Conformance, true)
				eq(t, c.JWTPublicKey, "/etc/key.pem")
				eq(t, c.PingInterval, time.Second)
				eq(t, c.CORSOrigins, []string{"http://localhost:5173"})
				eq(t, c.RecoveryWindow, 30*time.Second)
				eq(t, c.PprofAddr, "127.0.0.1:6060")
			},
		},
		{
			name: "every limit from the environment",
			env: map[string]string{
				"SWITCHBOARD_MAX_CONNECTIONS":      "500",
				"SWITCHBOARD_CONN_RATE":            "2.5",
				"SWITCHBOARD_CONN_BURST":           "5",
				"SWITCHBOARD_EVENT_RATE":           "10",
				"SWITCHBOARD_EVENT_BURST":          "20",
				"SWITCHBOARD_EVENT_ABUSE":          "0",
				"SWITCHBOARD_MAX_ROOMS_PER_SOCKET": "7",
				"SWITCHBOARD_WRITE_TIMEOUT":        "3s",
				"SWITCHBOARD_MAX_WRITE_BUFFER":     "65536",
			},
			check: func(t *testing.T, c Config) {
				eq(t, c.Limits, Limits{
					MaxConnections: 500, ConnRate: 2.5, ConnBurst: 5, EventRate: 10, EventBurst: 20,
					EventAbuse: 0, MaxRoomsPerSocket: 7, WriteTimeout: 3 * time.Second, MaxWriteBuffer: 65536,
				})
			},
		},
		{
			name: "limits off with 0",
			args: []string{"--max-connections=0", "--conn-rate=0", "--conn-burst=0", "--event-rate=0", "--event-burst=0", "--max-rooms-per-socket=0", "--max-write-buffer=0"},
			check: func(t *testing.T, c Config) {
				eq(t, c.Limits.MaxConnections, 0)
				eq(t, c.Limits.ConnRate, 0.0)
				eq(t, c.Limits.EventRate, 0.0)
				eq(t, c.Limits.MaxRoomsPerSocket, 0)
				eq(t, c.Limits.MaxWriteBuffer, int64(0))
			},
		},
		{
			name: "drain delay, recovery bound, parser, relay tick",
			args: []string{"--drain-delay=500ms", "--recovery-max-mib", "64", "--parser=msgpack", "--relay-tick=20ms"},
			check: func(t *testing.T, c Config) {
				eq(t, c.DrainDelay, 500*time.Millisecond)
				eq(t, c.RecoveryMaxMiB, int64(64))
				eq(t, c.Parser, ParserMsgpack)
				eq(t, c.RelayTick, 20*time.Millisecond)
			},
		},
		{
			name:  "drain delay 0 closes at once",
			args:  []string{"--drain-delay=0"},
			check: func(t *testing.T, c Config) { eq(t, c.DrainDelay, time.Duration(0)) },
		},
		{
			name:  "sharded adapter",
			args:  []string{"--adapter=redis-sharded"},
			check: func(t *testing.T, c Config) { eq(t, c.Adapter, AdapterRedisSharded) },
		},
		{
			name: "hooks: headers lower-cased without duplicates, namespaces kept in order",
			args: []string{"--hook-url=https://app.internal/switchboard", "--hook-secret=s", "--hook-timeout=2s",
				"--hook-connect", "--hook-headers", "Cookie, X-Tenant,cookie,", "--namespaces=/game,/doc/v2"},
			check: func(t *testing.T, c Config) {
				eq(t, c.HookURL, "https://app.internal/switchboard")
				eq(t, c.HookSecret, "s")
				eq(t, c.HookTimeout, 2*time.Second)
				eq(t, c.HookConnect, true)
				eq(t, c.HookHeaders, []string{"cookie", "x-tenant"})
				eq(t, c.Namespaces, []string{"/game", "/doc/v2"})
			},
		},
		{
			name: "admin UI",
			args: []string{"--admin-user=ops", "--admin-password-hash=" + testBcryptHash, "--admin-mode=development"},
			check: func(t *testing.T, c Config) {
				eq(t, c.AdminUser, "ops")
				eq(t, c.AdminPasswordHash, testBcryptHash)
				eq(t, c.AdminMode, AdminModeDevelopment)
			},
		},
		{
			name: "every new setting from the environment",
			env: map[string]string{
				"SWITCHBOARD_DRAIN_DELAY":         "3s",
				"SWITCHBOARD_RECOVERY_MAX_MIB":    "512",
				"SWITCHBOARD_ADAPTER":             "redis-sharded",
				"SWITCHBOARD_PARSER":              "default",
				"SWITCHBOARD_HOOK_URL":            "http://127.0.0.1:8080",
				"SWITCHBOARD_HOOK_SECRET":         "hook-secret",
				"SWITCHBOARD_HOOK_TIMEOUT":        "750ms",
				"SWITCHBOARD_HOOK_CONNECT":        "true",
				"SWITCHBOARD_HOOK_HEADERS":        "COOKIE",
				"SWITCHBOARD_NAMESPACES":          "/game",
				"SWITCHBOARD_RELAY_TICK":          "100ms",
				"SWITCHBOARD_ADMIN_USER":          "root",
				"SWITCHBOARD_ADMIN_PASSWORD_HASH": testBcryptHash,
				"SWITCHBOARD_ADMIN_MODE":          "production",
			},
			check: func(t *testing.T, c Config) {
				eq(t, c.DrainDelay, 3*time.Second)
				eq(t, c.RecoveryMaxMiB, int64(512))
				eq(t, c.Adapter, AdapterRedisSharded)
				eq(t, c.Parser, ParserDefault)
				eq(t, c.HookURL, "http://127.0.0.1:8080")
				eq(t, c.HookSecret, "hook-secret")
				eq(t, c.HookTimeout, 750*time.Millisecond)
				eq(t, c.HookConnect, true)
				eq(t, c.HookHeaders, []string{"cookie"})
				eq(t, c.Namespaces, []string{"/game"})
				eq(t, c.RelayTick, 100*time.Millisecond)
				eq(t, c.AdminUser, "root")
				eq(t, c.AdminPasswordHash, testBcryptHash)
				eq(t, c.AdminMode, AdminModeProduction)
			},
		},
		{
			name: "flag wins over env for a hook setting",
			args: []string{"--hook-url=https://b.internal", "--hook-timeout=1s"},
			env:  map[string]string{"SWITCHBOARD_HOOK_URL": "https://a.internal", "SWITCHBOARD_HOOK_SECRET": "s", "SWITCHBOARD_HOOK_TIMEOUT": "9s"},
			check: func(t *testing.T, c Config) {
				eq(t, c.HookURL, "https://b.internal")
				eq(t, c.HookTimeout, time.Second)
			},
		},
		{
			name:  "flag wins over env for a limit",
			args:  []string{"--event-rate=5"},
			env:   map[string]string{"SWITCHBOARD_EVENT_RATE": "9"},
			check: func(t *testing.T, c Config) { eq(t, c.Limits.EventRate, 5.0) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(tt.args, mapEnv(tt.env), nil)
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestLoadConfigInvalid(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		setting string // the setting the error must name
	}{
		{name: "bad duration", args: []string{"--ping-interval", "soon"}, setting: "--ping-interval"},
		{name: "negative duration", args: []string{"--ping-timeout=-1s"}, setting: "--ping-timeout"},
		{name: "zero ping interval", args: []string{"--ping-interval=0"}, setting: "--ping-interval"},
		{name: "bad number from env", env: map[string]string{"SWITCHBOARD_MAX_PAYLOAD": "lots"}, setting: "SWITCHBOARD_MAX_PAYLOAD"},
		{name: "zero payload", args: []string{"--max-payload=0"}, setting: "--max-payload"},
		{name: "zero gc percent", args: []string{"--gc-percent=0"}, setting: "--gc-percent"},
		{name: "negative gc floor", args: []string{"--gc-floor-mib=-1"}, setting: "--gc-floor-mib"},
		{name: "negative memory limit", env: map[string]string{"SWITCHBOARD_MEMORY_LIMIT_MIB": "-5"}, setting: "--memory-limit-mib"},
		{name: "negative recovery", args: []string{"--recovery-window=-1m"}, setting: "--recovery-window"},
		{name: "unknown adapter", args: []string{"--adapter=kafka"}, setting: "--adapter"},
		{name: "bad redis url", args: []string{"--redis-url=http://x"}, setting: "--redis-url"},
		{name: "negative history", args: []string{"--chat-history=-1"}, setting: "--chat-history"},
		{name: "bad log level", args: []string{"--log-level=loud"}, setting: "--log-level"},
		{name: "bad log format", args: []string{"--log-format=xml"}, setting: "--log-format"},
		{name: "bad addr", args: []string{"--addr=3000"}, setting: "--addr"},
		{name: "bad pprof addr", args: []string{"--pprof-addr=6060"}, setting: "--pprof-addr"},
		{name: "bad origin", args: []string{"--cors-origins=example.com"}, setting: "--cors-origins"},
		{name: "bad bool from env", env: map[string]string{"SWITCHBOARD_CONFORMANCE": "maybe"}, setting: "--conformance"},
		{name: "unknown flag", args: []string{"--colour"}, setting: "--colour"},
		{name: "stray argument", args: []string{"serve"}, setting: "arguments"},
		{name: "negative max connections", args: []string{"--max-connections=-1"}, setting: "--max-connections"},
		{name: "negative conn rate", args: []string{"--conn-rate=-2"}, setting: "--conn-rate"},
		{name: "conn rate without burst", args: []string{"--conn-rate=20", "--conn-burst=0"}, setting: "--conn-burst"},
		{name: "bad event rate from env", env: map[string]string{"SWITCHBOARD_EVENT_RATE": "fast"}, setting: "SWITCHBOARD_EVENT_RATE"},
		{name: "event rate without burst", args: []string{"--event-burst=0"}, setting: "--event-burst"},
		{name: "negative event abuse", args: []string{"--event-abuse=-1"}, setting: "--event-abuse"},
		{name: "negative rooms per socket", args: []string{"--max-rooms-per-socket=-5"}, setting: "--max-rooms-per-socket"},
		{name: "zero write timeout", args: []string{"--write-timeout=0"}, setting: "--write-timeout"},
		{name: "negative write buffer", args: []string{"--max-write-buffer=-1"}, setting: "--max-write-buffer"},
		{name: "negative drain delay", args: []string{"--drain-delay=-1s"}, setting: "--drain-delay"},
		{name: "bad drain delay from env", env: map[string]string{"SWITCHBOARD_DRAIN_DELAY": "soon"}, setting: "SWITCHBOARD_DRAIN_DELAY"},
		{name: "zero recovery bound", args: []string{"--recovery-max-mib=0"}, setting: "--recovery-max-mib"},
		{name: "negative recovery bound", env: map[string]string{"SWITCHBOARD_RECOVERY_MAX_MIB": "-1"}, setting: "--recovery-max-mib"},
		{name: "sharded misspelt", args: []string{"--adapter=redis-shard"}, setting: "--adapter"},
		{name: "unknown parser", args: []string{"--parser=json"}, setting: "--parser"},
		{name: "zero relay tick", args: []string{"--relay-tick=0"}, setting: "--relay-tick"},
		{name: "zero hook timeout", args: []string{"--hook-timeout=0"}, setting: "--hook-timeout"},
		{name: "hook url without secret", args: []string{"--hook-url=https://app.internal"}, setting: "--hook-secret"},
		{name: "hook url not http", args: []string{"--hook-url=ftp://app.internal", "--hook-secret=s"}, setting: "--hook-url"},
		{name: "hook url relative", args: []string{"--hook-url=/hooks", "--hook-secret=s"}, setting: "--hook-url"},
		{name: "hook url with a query", args: []string{"--hook-url=https://app.internal/h?x=1", "--hook-secret=s"}, setting: "--hook-url"},
		{name: "hook secret without url", env: map[string]string{"SWITCHBOARD_HOOK_SECRET": "s"}, setting: "--hook-secret"},
		{name: "hook connect without url", args: []string{"--hook-connect"}, setting: "--hook-connect"},
		{name: "bad hook connect from env", env: map[string]string{"SWITCHBOARD_HOOK_CONNECT": "sometimes"}, setting: "--hook-connect"},
		{name: "hook headers without hook connect", args: []string{"--hook-url=https://a.internal", "--hook-secret=s", "--hook-headers=cookie"}, setting: "--hook-headers"},
		{name: "hook headers with authorization", args: []string{"--hook-url=https://a.internal", "--hook-secret=s", "--hook-connect", "--hook-headers=cookie,Authorization"}, setting: "--hook-headers"},
		{name: "hook header not a name", args: []string{"--hook-url=https://a.internal", "--hook-secret=s", "--hook-connect", "--hook-headers=x:y"}, setting: "--hook-headers"},
		{name: "namespaces without hook url", args: []string{"--namespaces=/game"}, setting: "--namespaces"},
		{name: "namespace without slash", args: []string{"--hook-url=https://a.internal", "--hook-secret=s", "--namespaces=game"}, setting: "--namespaces"},
		{name: "namespace /", args: []string{"--hook-url=https://a.internal", "--hook-secret=s", "--namespaces=/game,/"}, setting: "--namespaces"},
		{name: "namespace /chat", args: []string{"--hook-url=https://a.internal", "--hook-secret=s", "--namespaces=/chat"}, setting: "--namespaces"},
		{name: "namespace /relay", args: []string{"--hook-url=https://a.internal", "--hook-secret=s", "--namespaces=/relay"}, setting: "--namespaces"},
		{name: "namespace /admin", args: []string{"--hook-url=https://a.internal", "--hook-secret=s", "--namespaces=/admin"}, setting: "--namespaces"},
		{name: "namespace twice", args: []string{"--hook-url=https://a.internal", "--hook-secret=s", "--namespaces=/game,/doc,/game"}, setting: "--namespaces"},
		{name: "namespace with a space", args: []string{"--hook-url=https://a.internal", "--hook-secret=s", "--namespaces=/my game"}, setting: "--namespaces"},
		{name: "admin hash not bcrypt", args: []string{"--admin-password-hash=secret"}, setting: "--admin-password-hash"},
		{name: "admin hash truncated", args: []string{"--admin-password-hash=" + testBcryptHash[:30]}, setting: "--admin-password-hash"},
		{name: "unknown admin mode", args: []string{"--admin-mode=debug"}, setting: "--admin-mode"},
		{name: "development without admin", args: []string{"--admin-mode=development"}, setting: "--admin-mode"},
		{name: "empty admin user", args: []string{"--admin-user=", "--admin-password-hash=" + testBcryptHash}, setting: "--admin-user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(tt.args, mapEnv(tt.env), nil)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("want a *ConfigError, got %v", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.setting) {
				t.Fatalf("error %q does not name %s", msg, tt.setting)
			}
			if strings.Contains(msg, "\n") {
				t.Fatalf("error %q is more than one line", msg)
			}
		})
	}
}

func TestLoadConfigHelp(t *testing.T) {
	var out strings.Builder
	_, err := LoadConfig([]string{"--help"}, mapEnv(nil), &out)
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("want ErrHelp, got %v", err)
	}
	if !strings.Contains(out.String(), "-recovery-window") {
		t.Fatalf("usage does not list the flags:\n%s", out.String())
	}
}

// testBcryptHash is a bcrypt hash (cost 10) of "password".
const testBcryptHash = "$2a$10$AZf4VHRfXqCcF/Q1oaRCN.65Zm2h4xWZJ8gprJmwiMLauh5.YUYXa"

// TestConfigSecretsNotEchoed: a refused hook URL (which may carry credentials) or admin hash is not
// repeated on stderr.
func TestConfigSecretsNotEchoed(t *testing.T) {
	for _, args := range [][]string{
		{"--hook-url=ftp://user:hunter2@app.internal", "--hook-secret=s"},
		{"--admin-password-hash=$2a$hunter2"},
	} {
		_, err := LoadConfig(args, mapEnv(nil), nil)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("LoadConfig(%q) = %v, want an error without the value", args, err)
		}
	}
}

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func eq[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}
