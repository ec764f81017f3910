package e2e

import (
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestReadyzDuringDrainDelay (issue 22 item 6): after SIGTERM, /readyz is seen answering 503
// while /healthz, new handshakes and connected sockets are still served, for --drain-delay;
// only then are sockets closed, and the process exits 0. Before, /readyz answered 200 until the
// listener closed (200 at 155 ms, connection refused at 524 ms): a load balancer never saw the
// node leave.
func TestReadyzDuringDrainDelay(t *testing.T) {
	const drain = 2 * time.Second
	n := startNode(t, "--drain-delay", drain.String())
	connected := mustDial(t, n)
	connected.mustConnect("/", nil)
	if status, _, _ := httpGet(n.URL + "/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz before the signal = %d, want 200", status)
	}

	signalled := time.Now()
	n.signal(syscall.SIGTERM)
	var first503 time.Duration
	waitForWithin(t, drain, "/readyz answering 503", func() bool {
		status, _, _ := httpGet(n.URL + "/readyz")
		first503 = time.Since(signalled)
		return status == http.StatusServiceUnavailable
	})
	if status, _, err := httpGet(n.URL + "/healthz"); status != http.StatusOK {
		t.Errorf("/healthz while draining = %d %v, want 200", status, err)
	}
	during, err := dialSIO(t, n, "", nil)
	if err != nil {
		t.Fatalf("a handshake while draining: %v", err)
	}
	during.mustConnect("/", nil)
	if elapsed := time.Since(signalled); elapsed >= drain {
		t.Fatalf("the checks took %v, longer than the drain delay: they prove nothing", elapsed)
	}

	took, closed := connected.waitClosed(drain+10*time.Second, signalled)
	if !closed || took < drain {
		t.Errorf("the connected socket was closed %v after the signal (closed: %v), want after the %v drain delay", took, closed, drain)
	}
	if code := n.wait(); code != 0 {
		t.Errorf("exit code %d after a clean drain, want 0", code)
	}
	t.Logf("/readyz 503 %v after the signal; the socket closed after %v", first503.Round(time.Millisecond), took.Round(time.Millisecond))
}
