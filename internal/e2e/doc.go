// Package e2e holds black-box tests of the switchboard binary: each test starts real processes
// ($SWITCHBOARD_BIN, or a binary built once from this checkout) on 127.0.0.1:0 and judges them
// only from outside — HTTP, raw Engine.IO and Socket.IO clients, /metrics, the JSON log, the
// runtime's own figures through --pprof-addr and the process's descriptors in /proc. Because
// nothing here imports the server, the same tests run against any build (an older commit's
// included), which is how a hardening fix is shown to have been needed.
package e2e
