package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/hooks"
)

// HookBackend is the app backend of the hook-fixed scenario: the least a real one does for a
// forwarded event, so that what is measured is Switchboard's side of the hook. It reads the
// request, checks its signature as a backend must (hooks.Verify), and answers the event hook
// with an ack carrying its own time, from the request's arrival to its answer:
// {"ack":[{"data":{"svc":<nanoseconds>}}]}. connect is accepted ({}) and events acknowledged
// (204). A request that is not signed with secret gets 401.
func HookBackend(secret string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			return
		}
		if hooks.Verify(secret, r.Header.Get(hooks.HeaderTimestamp), body, r.Header.Get(hooks.HeaderSignature), start, 5*time.Minute) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/hooks/event":
			out := make([]byte, 0, 48)
			out = append(out, `{"ack":[{"data":{"svc":`...)
			out = strconv.AppendInt(out, int64(time.Since(start)), 10)
			out = append(out, `}}]}`...)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(out)))
			_, _ = w.Write(out)
		case "/hooks/connect":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "{}")
		case "/hooks/events":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
}

// ServeHookBackend serves HookBackend on addr until ctx ends.
func ServeHookBackend(ctx context.Context, addr, secret string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("loadgen: hook backend: %w", err)
	}
	srv := &http.Server{Handler: HookBackend(secret), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("loadgen: hook backend: %w", err)
	}
	return nil
}
