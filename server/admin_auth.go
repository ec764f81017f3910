package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/switchboard/switchboard/socketio"
)

// errAdminCredentials is the admin UI's refusal, word for word what Node's instrument() sends
// and what the UI translates.
var errAdminCredentials = &socketio.ConnectError{Message: "invalid credentials"}

// adminAuthTimeout bounds a login: the session lookup and the wait for a bcrypt slot.
const adminAuthTimeout = 5 * time.Second

// adminSocketData is what an admin socket keeps: the session it was given at login, to be sent
// once it is connected.
type adminSocketData struct {
	session string
}

// authenticate is /admin's connect middleware, instrument()'s basic auth: a known session id
// (handshake auth {sessionId}) is let in as it is; otherwise {username, password} must be the
// admin user and match the bcrypt hash, and the socket gets a new session id. Anything else is
// "invalid credentials".
func (a *admin) authenticate(sock *socketio.Socket) error {
	auth := sock.Handshake().Auth
	ctx, cancel := context.WithTimeout(sock.Context(), adminAuthTimeout)
	defer cancel()
	if id, _ := auth["sessionId"].(string); id != "" {
		ok, err := a.sessions.exists(ctx, id)
		if err != nil {
			a.log.Warn().Err(err).Str("sid", sock.ID()).Msg("admin session lookup failed")
		}
		if ok {
			return nil
		}
	}
	user, _ := auth["username"].(string)
	password, isString := auth["password"].(string)
	// The hash is compared whatever the user name, so that the time taken does not tell a
	// right name from a wrong one.
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(a.user)) == 1
	if !isString || !a.passwordMatches(ctx, password) || !userOK {
		a.log.Info().Str("sid", sock.ID()).Msg("admin login refused")
		return errAdminCredentials
	}
	id := newAdminSessionID()
	if err := a.sessions.save(ctx, id); err != nil {
		// The login stands; only a reconnection with this session will need the password again.
		a.log.Warn().Err(err).Str("sid", sock.ID()).Msg("admin session not saved")
	}
	sock.SetData(&adminSocketData{session: id})
	return nil
}

// passwordMatches compares password with the hash. bcrypt is slow on purpose: at most a couple
// of comparisons run at once, so that a flood of logins costs the node two cores at most.
func (a *admin) passwordMatches(ctx context.Context, password string) bool {
	select {
	case a.logins <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-a.logins }()
	return bcrypt.CompareHashAndPassword(a.hash, []byte(password)) == nil
}

// newAdminSessionID is 16 lowercase hex characters, as Node's randomBytes(8).toString("hex").
func newAdminSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// adminSessions stores the admin UI's session ids.
type adminSessions interface {
	exists(ctx context.Context, id string) (bool, error)
	save(ctx context.Context, id string) error
}

// maxMemoryAdminSessions bounds the sessions one node keeps in memory; past it the one closest
// to expiry goes.
const maxMemoryAdminSessions = 1024

// memoryAdminSessions keeps sessions in this process (a node on the memory adapter), each for
// ttl.
type memoryAdminSessions struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	expires map[string]time.Time
}

var _ adminSessions = (*memoryAdminSessions)(nil)

func newMemoryAdminSessions(ttl time.Duration, max int) *memoryAdminSessions {
	return &memoryAdminSessions{ttl: ttl, max: max, expires: map[string]time.Time{}}
}

func (m *memoryAdminSessions) exists(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.expires[id]
	if ok && !time.Now().Before(exp) {
		delete(m.expires, id)
		ok = false
	}
	return ok, nil
}

func (m *memoryAdminSessions) save(_ context.Context, id string) error {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, exp := range m.expires {
		if !now.Before(exp) {
			delete(m.expires, k)
		}
	}
	for len(m.expires) >= m.max {
		oldest, first := "", time.Time{}
		for k, exp := range m.expires {
			if oldest == "" || exp.Before(first) {
				oldest, first = k, exp
			}
		}
		delete(m.expires, oldest)
	}
	m.expires[id] = now.Add(m.ttl)
	return nil
}

// adminSessionPrefix is the key prefix of Node's RedisStore ("socket.io-admin#<id>"), so that a
// session opened on a Node server running instrument() with a RedisStore on the same Redis is
// good on a Switchboard node, and the other way round.
const adminSessionPrefix = "socket.io-admin#"

// redisAdminSessions keeps sessions in the adapter's Redis, so that every node of a cluster
// accepts a session any node gave; Redis expires them.
type redisAdminSessions struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

var _ adminSessions = (*redisAdminSessions)(nil)

func newRedisAdminSessions(rdb redis.UniversalClient, ttl time.Duration) *redisAdminSessions {
	return &redisAdminSessions{rdb: rdb, ttl: ttl}
}

func (r *redisAdminSessions) exists(ctx context.Context, id string) (bool, error) {
	n, err := r.rdb.Exists(ctx, adminSessionPrefix+id).Result()
	if err != nil {
		return false, fmt.Errorf("admin: look up a session: %w", err)
	}
	return n == 1, nil
}

func (r *redisAdminSessions) save(ctx context.Context, id string) error {
	if err := r.rdb.Set(ctx, adminSessionPrefix+id, "1", r.ttl).Err(); err != nil {
		return fmt.Errorf("admin: save a session: %w", err)
	}
	return nil
}
