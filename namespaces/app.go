package namespaces

import (
	"github.com/switchboard/switchboard/socketio"
)

// App is a namespace of the app's own (--namespaces, SPEC §8.2): Switchboard handles none of its
// events, every one goes to the app backend through fallback, even one named like a built-in
// event of another namespace (subscribe here is the app's, not "/"'s). Its sockets are in their
// user room, as on every namespace, so that a backend's emit to user:<id> reaches them.
type App struct {
	name     string
	fallback Fallback
}

var _ Namespace = (*App)(nil)

// NewApp returns the namespace name (e.g. "/game") whose events all go to fallback. It panics on
// a nil fallback: such a namespace would ignore everything its clients say.
func NewApp(name string, fallback Fallback) *App {
	if fallback == nil {
		panic("namespaces: NewApp expects a fallback")
	}
	return &App{name: name, fallback: fallback}
}

// Name implements Namespace.
func (a *App) Name() string { return a.name }

// Register implements Namespace.
func (a *App) Register(nsp *socketio.Namespace) {
	nsp.Use(joinUserRoom)
	nsp.OnEvent(a.fallback)
}
