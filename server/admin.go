package server

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/socketio"
)

// AdminNamespace is the namespace @socket.io/admin-ui connects to (its default). It is served
// only with --admin-password-hash, and it is nobody's product namespace: it never appears in the
// HTTP API, /api/v1/stats, the landing page, the metrics or the admin UI's own lists.
const AdminNamespace = "/admin"

const (
	// adminStatsInterval is how often every node broadcasts its server_stats, as Node's
	// instrument() does; the UI marks a server unhealthy after 10 s without one.
	adminStatsInterval = 2 * time.Second
	// adminSessionTTL is how long a session id stays valid (Node's RedisStore default).
	adminSessionTTL = 24 * time.Hour
	// adminGatherTimeout bounds the wait for the other nodes' sockets (all_sockets): what
	// answered by then is sent.
	adminGatherTimeout = 3 * time.Second
	// adminCommandTimeout bounds a command's cluster-wide operation.
	adminCommandTimeout = 5 * time.Second
	// adminStreamQueue bounds the development-mode events waiting to be broadcast; more are
	// dropped (counted in the log) rather than slowing the product's sockets.
	adminStreamQueue = 8192
)

// admin serves @socket.io/admin-ui 0.5's protocol on /admin (SPEC §10), the Go counterpart of
// Node's instrument(): basic auth against the bcrypt hash and sessions (admin_auth.go),
// server_stats from every node (admin_stats.go), the commands (admin_commands.go) and, in
// development mode, every socket, room and event of the product namespaces (admin_dev.go).
// Everything aimed at "the UI" is a broadcast on /admin through the adapter, so that an admin UI
// connected to any node hears from every node, as with Node.
//
// A nil *admin is a node without /admin: its methods do nothing.
type admin struct {
	s   *Server
	log zerolog.Logger
	dev bool

	user     string
	hash     []byte
	sessions adminSessions
	logins   chan struct{} // bounds the bcrypt comparisons running at once

	nsp     *socketio.Namespace
	traffic adminTraffic
	stream  *adminStream // development mode only

	serverID string
	hostname string
	pid      int

	upgradeMu sync.Mutex
	upgrading map[*socketio.Socket]struct{} // development mode: sockets still on long-polling

	stop chan struct{}
	wg   sync.WaitGroup
}

// newAdmin prepares /admin when --admin-password-hash is set (nil otherwise). It is called
// before the Socket.IO server exists, so that configure can hand the server its hooks; serve
// adds the namespace once the product namespaces are there.
func (s *Server) newAdmin() *admin {
	if s.cfg.AdminPasswordHash == "" {
		return nil
	}
	host, _ := os.Hostname()
	a := &admin{
		s:         s,
		log:       s.log.With().Str("component", "admin").Logger(),
		dev:       s.cfg.AdminMode == AdminModeDevelopment,
		user:      s.cfg.AdminUser,
		hash:      []byte(s.cfg.AdminPasswordHash),
		logins:    make(chan struct{}, 2),
		serverID:  s.cfg.AdminServerID,
		hostname:  host,
		pid:       os.Getpid(),
		upgrading: map[*socketio.Socket]struct{}{},
		stop:      make(chan struct{}),
	}
	if a.serverID == "" {
		// Node's default is the hostname; the pid keeps two nodes on one host apart (the UI
		// merges servers with the same id into one row).
		a.serverID = host + "#" + strconv.Itoa(a.pid)
	}
	if rdb := s.backend.Redis(); rdb != nil {
		a.sessions = newRedisAdminSessions(rdb, adminSessionTTL)
	} else {
		a.sessions = newMemoryAdminSessions(adminSessionTTL, maxMemoryAdminSessions)
	}
	return a
}

// configure hands the Socket.IO server the hooks that count connections and traffic for
// server_stats' aggregated events, and gives /admin an adapter that keeps nothing for connection
// state recovery on a single node: what the admin UI is sent is of the moment, and kept it would
// fill /admin's share of the recovery buffer with stats and development-mode events. (A cluster
// adapter is kept: its broadcasts are how every node reaches every admin UI.)
func (a *admin) configure(cfg *socketio.Config) {
	if a == nil {
		return
	}
	cfg.OnConnOpen = a.traffic.opened
	cfg.OnConnClose = a.traffic.closed
	cfg.OnTraffic = a.traffic.add
	if a.s.backend.Redis() != nil {
		return
	}
	base := cfg.Adapter
	if base == nil {
		base = socketio.MemoryAdapter
	}
	cfg.Adapter = func(n *socketio.Namespace) (socketio.Adapter, error) {
		if n.Name() == AdminNamespace {
			return socketio.NewLocalAdapter(n, socketio.LocalOptions{}), nil
		}
		return base(n)
	}
}

// serve adds /admin and, in development mode, the observers of every product namespace, and
// starts the stats (and stream) loops. It runs once the product namespaces are registered.
func (a *admin) serve() error {
	if a == nil {
		return nil
	}
	nsp, err := a.s.io.Of(AdminNamespace)
	if err != nil {
		return fmt.Errorf("server: namespace %s: %w", AdminNamespace, err)
	}
	a.nsp = nsp
	nsp.Use(a.authenticate)
	nsp.OnConnection(a.connected)
	nsp.OnEvent(a.command)
	nsp.OnServerSideEmit(a.serverSideEvent)
	if a.dev {
		a.stream = newAdminStream(nsp, adminStreamQueue)
		for _, p := range a.productNamespaces() {
			a.observe(p)
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.stream.run(a.stop, a.log)
		}()
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.statsLoop()
	}()
	a.log.Info().Str("nsp", AdminNamespace).Str("mode", a.s.cfg.AdminMode).Msg("admin UI namespace served")
	return nil
}

// close stops the loops; the namespace's sockets close with the server's.
func (a *admin) close() {
	if a == nil {
		return
	}
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	a.wg.Wait()
}

// features are the supportedFeatures of config: every command (readonly is off), the
// aggregated events, and in development mode every socket and event.
func (a *admin) features() []string {
	f := []string{"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS"}
	if a.dev {
		f = append(f, "ALL_EVENTS")
	}
	return f
}

// adminConfig is the payload of config.
type adminConfig struct {
	SupportedFeatures []string `json:"supportedFeatures"`
}

// connected greets an admin socket: its new session (after the CONNECT answer, so that the
// stock UI, whose listener is registered on connect, keeps it), config, and in development mode
// every socket of the cluster.
func (a *admin) connected(sock *socketio.Socket) {
	if d, ok := sock.Data().(*adminSocketData); ok && d.session != "" {
		_ = sock.Emit("session", d.session)
	}
	_ = sock.Emit("config", adminConfig{SupportedFeatures: a.features()})
	if a.dev {
		ctx, cancel := context.WithTimeout(sock.Context(), adminGatherTimeout)
		defer cancel()
		_ = sock.Emit("all_sockets", a.allSockets(ctx))
	}
}

// productNamespaces are the namespaces the admin UI shows: every namespace of the node but
// /admin.
func (a *admin) productNamespaces() []*socketio.Namespace {
	all := a.s.io.Namespaces()
	out := all[:0]
	for _, n := range all {
		if n.Name() != AdminNamespace {
			out = append(out, n)
		}
	}
	return out
}

// productNamespace is the namespace name a command may act on: an existing one, never /admin
// (io.of() in Node would create it; here an unknown name does nothing).
func (a *admin) productNamespace(name string) *socketio.Namespace {
	if name == AdminNamespace {
		return nil
	}
	return a.s.io.Namespace(name)
}

// productConnections is this node's Engine.IO connections but those that carry only /admin
// sockets (an admin UI's), for the landing page: they are not product connections.
func (s *Server) productConnections() int {
	n := s.io.Connections()
	a := s.admin
	if a == nil || a.nsp == nil {
		return n
	}
	admins := a.nsp.Sockets()
	if len(admins) == 0 {
		return n
	}
	conns := make(map[string]struct{}, len(admins))
	for _, sock := range admins {
		conns[sock.ConnID()] = struct{}{}
	}
	for _, p := range a.productNamespaces() {
		for _, sock := range p.Sockets() {
			delete(conns, sock.ConnID()) // also on a product namespace: a product connection
		}
		if len(conns) == 0 {
			break
		}
	}
	return max(n-len(conns), 0)
}
