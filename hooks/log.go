package hooks

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// logEvery is the least time between two lines of one hook and outcome: a backend that is down
// fails every request, and one line a second says so as well as thousands.
const logEvery = time.Second

// logger logs failed requests, at most one line per hook and outcome each logEvery, with how many
// were left out since the last line. It never logs a body.
type logger struct {
	l zerolog.Logger

	mu   sync.Mutex
	last map[[2]string]logState
}

type logState struct {
	at         time.Time
	suppressed int
}

func newLogger(l zerolog.Logger) *logger {
	return &logger{l: l.With().Str("component", "hooks").Logger(), last: make(map[[2]string]logState)}
}

// failed logs one failed request. A refusal is the backend deciding, not a fault: debug. An
// invalid answer is a backend bug an operator must chase: error. The rest are the backend or the
// network being unwell: warn.
func (g *logger) failed(hook, outcome string, status int, err *Error) {
	var ev *zerolog.Event
	switch outcome {
	case outcomeRefused, outcomeCanceled:
		ev = g.l.Debug()
	case outcomeInvalid:
		ev = g.l.Error()
	default:
		ev = g.l.Warn()
	}
	if ev == nil {
		return
	}
	k := [2]string{hook, outcome}
	now := time.Now()
	g.mu.Lock()
	st := g.last[k]
	if !st.at.IsZero() && now.Sub(st.at) < logEvery {
		st.suppressed++
		g.last[k] = st
		g.mu.Unlock()
		ev.Discard()
		return
	}
	g.last[k] = logState{at: now}
	g.mu.Unlock()
	ev = ev.Str("hook", hook).Str("outcome", outcome)
	if status != 0 {
		ev = ev.Int("status", status)
	}
	if st.suppressed > 0 {
		ev = ev.Int("suppressed", st.suppressed)
	}
	if err.Refused {
		ev = ev.Str("code", err.Code)
	} else if err.cause != nil {
		ev = ev.Str("error", err.cause.Error())
	}
	ev.Msg("hook request failed")
}
