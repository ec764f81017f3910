// Package hooks is the client Switchboard uses to call an app backend over HTTP (SPEC §8).
//
// It owns everything between a decision Switchboard asks for and the backend's answer: the
// request bodies and their HMAC-SHA256 signature (Sign, Verify), one keep-alive HTTP client with
// bounded connections and a timeout per request, responses read with a hard size cap, and the
// decoding of answers into plain results or coded errors. On top of that it owns the three hooks'
// delivery rules:
//
//   - Connect asks the backend whether a namespace CONNECT is accepted (§8.1) and waits for it.
//   - Forward sends a client event to the backend (§8.2): one request at a time per key (a socket),
//     in the order Forward was called, keys in parallel up to Config.MaxInFlight requests, and at
//     most Config.MaxQueued events waiting per key (ErrBackpressure beyond). A key's queue and
//     goroutine exist only while it has work. ForwardFunc is Forward with the request built when
//     it is sent, after the key's previous answer was applied.
//   - Notify queues a lifecycle event for the events webhook (§8.3) and never blocks: events are
//     batched, posted in order one batch at a time, retried with backoff until a 2xx, and kept in a
//     bounded queue that drops its oldest events (counted, logged at most once a minute) when full.
//
// It also owns the hooks' metrics (prefixed switchboard_hook_, registered on Config.Registerer)
// and logs every failed request once, with the hook and its outcome, never a payload or a token.
// Callers map errors to client codes through *Error's Code and do not log them again.
//
// Outcomes, the label of switchboard_hook_requests_total and of the log lines:
//
//	ok           a 2xx with a valid answer
//	refused      the backend said no: a 4xx, or a 200 {"error": ...}        → the backend's code
//	unavailable  a 5xx                                                      → "unavailable"
//	unreachable  no connection, or it broke before the answer was read      → "unavailable"
//	timeout      no full answer within Config.Timeout                       → "unavailable"
//	canceled     the caller's context ended, or Close gave up               → "unavailable"
//	invalid      a 2xx (or 4xx) body that is not the hook's JSON shape, a
//	             body over Config.MaxResponse, a redirect or another status → "internal"
//
// A 4xx whose body is not {"error": {"code", "message"}} is given a code by its status: 400 and
// 422 bad_request, 401 unauthorized, 403 forbidden, 404 not_found, 429 rate_limited, and every
// other 4xx forbidden (the backend refused without saying why, and refusing is what a 4xx means
// here). A 204 is an empty answer, {}.
package hooks
