package server

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

const testAPIKey = "test-key-0123456789"

// apiConfig is testConfig with the HTTP API on.
func apiConfig() Config {
	cfg := testConfig()
	cfg.APIKeys = []string{"other-key", testAPIKey}
	return cfg
}

// apiCall is one HTTP request to the API, the way curl would send it.
type apiCall struct {
	method      string
	path        string // under /api/v1
	key         string // sent as "Authorization: Bearer <key>" unless empty
	auth        string // a whole Authorization header, when set
	contentType string // "application/json" when empty and there is a body; "-" for none
	body        string
	chunked     bool // send the body without a Content-Length
}

// apiResponse is what came back.
type apiResponse struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (c apiCall) do(t *testing.T, baseURL string) apiResponse {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
		if c.chunked {
			body = io.MultiReader(strings.NewReader(c.body)) // hides the length from net/http
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), c.method, baseURL+"/api/v1"+c.path, body)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case c.auth != "":
		req.Header.Set("Authorization", c.auth)
	case c.key != "":
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	switch {
	case c.contentType == "-":
	case c.contentType != "":
		req.Header.Set("Content-Type", c.contentType)
	case c.body != "":
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := apiResponse{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json; body %s", c.method, c.path, ct, raw)
	}
	if err := json.Unmarshal(raw, &out.body); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %s", c.method, c.path, raw)
	}
	return out
}

// post is an authorized JSON POST.
func post(path, body string) apiCall {
	return apiCall{method: http.MethodPost, path: path, key: testAPIKey, body: body}
}

// get is an authorized GET.
func get(path string) apiCall {
	return apiCall{method: http.MethodGet, path: path, key: testAPIKey}
}

// errorOf returns the code and message of an error body, failing when it has another shape.
func errorOf(t *testing.T, res apiResponse) (code, message string) {
	t.Helper()
	e, ok := res.body["error"].(map[string]any)
	if !ok || len(res.body) != 1 {
		t.Fatalf("want {\"error\": {...}}, got %s", res.raw)
	}
	code, _ = e["code"].(string)
	message, _ = e["message"].(string)
	if code == "" || message == "" || len(e) != 2 {
		t.Fatalf("want error code and message, got %s", res.raw)
	}
	return code, message
}

func TestAPIErrors(t *testing.T) {
	cfg := apiConfig()
	cfg.MaxPayload = 256
	ts := startServer(t, cfg)
	big := `{"event":"e","data":"` + strings.Repeat("x", 300) + `"}`
	tests := []struct {
		name   string
		call   apiCall
		status int
		code   string
		// mention must appear in the message (the field a 400 names).
		mention string
	}{
		// auth
		{"no Authorization header", apiCall{method: "POST", path: "/emit", body: `{"event":"e"}`}, 401, "unauthorized", "Bearer"},
		{"wrong key", apiCall{method: "POST", path: "/emit", key: "nope", body: `{"event":"e"}`}, 401, "unauthorized", "not valid"},
		{"key that is a prefix of a real one", apiCall{method: "GET", path: "/stats", key: testAPIKey[:5]}, 401, "unauthorized", ""},
		{"basic scheme", apiCall{method: "GET", path: "/stats", auth: "Basic " + testAPIKey}, 401, "unauthorized", ""},
		{"bearer without a key", apiCall{method: "GET", path: "/sockets", auth: "Bearer  "}, 401, "unauthorized", ""},
		// routing
		{"unknown route", get("/nope"), 404, "not_found", "/api/v1/nope"},
		{"the API root", get(""), 404, "not_found", ""},
		{"unknown route without a key", apiCall{method: "GET", path: "/emit/x"}, 404, "not_found", ""},
		{"GET on emit", get("/emit"), 405, "method_not_allowed", "GET"},
		{"POST on stats", post("/stats", `{}`), 405, "method_not_allowed", "POST"},
		{"DELETE on sockets", apiCall{method: "DELETE", path: "/sockets", key: testAPIKey}, 405, "method_not_allowed", ""},
		// media type and size
		{"no content type", apiCall{method: "POST", path: "/emit", key: testAPIKey, contentType: "-", body: `{"event":"e"}`}, 415, "unsupported_media_type", "application/json"},
		{"text/plain", apiCall{method: "POST", path: "/emit", key: testAPIKey, contentType: "text/plain", body: `{"event":"e"}`}, 415, "unsupported_media_type", ""},
		{"form", apiCall{method: "POST", path: "/sockets/join", key: testAPIKey, contentType: "application/x-www-form-urlencoded", body: `join=a`}, 415, "unsupported_media_type", ""},
		{"json lookalike", apiCall{method: "POST", path: "/emit", key: testAPIKey, contentType: "application/jsonx", body: `{"event":"e"}`}, 415, "unsupported_media_type", ""},
		{"too large", post("/emit", big), 413, "payload_too_large", "256"},
		{"too large without Content-Length", apiCall{method: "POST", path: "/emit", key: testAPIKey, body: big, chunked: true}, 413, "payload_too_large", ""},
		// JSON shape
		{"empty body", post("/emit", ""), 415, "unsupported_media_type", ""},
		{"empty JSON body", apiCall{method: "POST", path: "/emit", key: testAPIKey, contentType: "application/json"}, 400, "bad_request", "end of the body"},
		{"malformed JSON", post("/emit", `{"event":`), 400, "bad_request", "not valid JSON"},
		{"syntax error", post("/emit", `{"event" "e"}`), 400, "bad_request", "syntax error"},
		{"trailing data", post("/emit", `{"event":"e"} {}`), 400, "bad_request", "after the JSON value"},
		{"array body", post("/emit", `[{"event":"e"}]`), 400, "bad_request", "JSON object"},
		{"null body", post("/emit", `null`), 400, "bad_request", "JSON object"},
		{"string body", post("/emit", `"e"`), 400, "bad_request", "JSON object"},
		{"unknown field", post("/emit", `{"event":"e","room":"r"}`), 400, "bad_request", `"room"`},
		{"field in another case", post("/emit", `{"Event":"e"}`), 400, "bad_request", `"Event"`},
		{"event not a string", post("/emit", `{"event":1}`), 400, "bad_request", "event must be a string"},
		{"rooms not a list", post("/emit", `{"event":"e","rooms":"r"}`), 400, "bad_request", "rooms must be an array"},
		{"rooms of numbers", post("/emit", `{"event":"e","rooms":[1]}`), 400, "bad_request", "rooms"},
		{"except not a list", post("/emit", `{"event":"e","except":{}}`), 400, "bad_request", "except"},
		{"namespace not a string", post("/emit", `{"event":"e","namespace":true}`), 400, "bad_request", "namespace must be a string"},
		{"volatile not a boolean", post("/emit", `{"event":"e","volatile":"yes"}`), 400, "bad_request", "volatile must be a boolean"},
		{"args not a list", post("/emit", `{"event":"e","args":{"a":1}}`), 400, "bad_request", "args must be an array"},
		{"ackTimeoutMs not an integer", post("/emit", `{"event":"e","ackTimeoutMs":1.5}`), 400, "bad_request", "ackTimeoutMs must be an integer"},
		{"ackTimeoutMs a string", post("/emit", `{"event":"e","ackTimeoutMs":"100"}`), 400, "bad_request", "ackTimeoutMs"},
		// a field given twice: the last would win, so ["r1"] then [] would widen the emit to everyone
		{"rooms twice", post("/emit", `{"rooms":["r1"],"rooms":[],"event":"e"}`), 400, "bad_request", `"rooms" is given twice`},
		{"rooms twice, once escaped", post("/emit", `{"rooms":["r1"],"event":"e","r\u006foms":[]}`), 400, "bad_request", `"rooms"`},
		{"event twice", post("/emit", `{"event":"e","event":"f"}`), 400, "bad_request", `"event"`},
		{"data twice", post("/emit", `{"event":"e","data":1,"data":2}`), 400, "bad_request", `"data"`},
		{"except twice", post("/emit", `{"event":"e","except":["a"],"except":[]}`), 400, "bad_request", `"except"`},
		{"namespace twice", post("/emit", `{"namespace":"/","event":"e","namespace":"/chat"}`), 400, "bad_request", `"namespace"`},
		{"ackTimeoutMs twice", post("/emit", `{"event":"e","ackTimeoutMs":5,"ackTimeoutMs":60000}`), 400, "bad_request", `"ackTimeoutMs"`},
		{"join twice", post("/sockets/join", `{"join":["a"],"join":["b"]}`), 400, "bad_request", `"join"`},
		{"leave twice", post("/sockets/leave", `{"leave":["a"],"rooms":["x"],"leave":["b"]}`), 400, "bad_request", `"leave"`},
		{"close twice", post("/sockets/disconnect", `{"close":true,"close":false}`), 400, "bad_request", `"close"`},
		// emit semantics
		{"no event", post("/emit", `{"rooms":["r"]}`), 400, "bad_request", "event"},
		{"empty event", post("/emit", `{"event":""}`), 400, "bad_request", "event"},
		{"reserved event connect", post("/emit", `{"event":"connect"}`), 400, "bad_request", "reserved"},
		{"reserved event disconnect", post("/emit", `{"event":"disconnect"}`), 400, "bad_request", "reserved"},
		{"reserved event newListener", post("/emit", `{"event":"newListener"}`), 400, "bad_request", "reserved"},
		{"data and args", post("/emit", `{"event":"e","data":1,"args":[1]}`), 400, "bad_request", "data and args"},
		{"null data and args", post("/emit", `{"event":"e","data":null,"args":[]}`), 400, "bad_request", "data and args"},
		{"ackTimeoutMs zero", post("/emit", `{"event":"e","ackTimeoutMs":0}`), 400, "bad_request", "ackTimeoutMs"},
		{"ackTimeoutMs too long", post("/emit", `{"event":"e","ackTimeoutMs":60001}`), 400, "bad_request", "ackTimeoutMs"},
		{"unknown namespace", post("/emit", `{"event":"e","namespace":"/nope"}`), 400, "bad_request", `"/nope"`},
		{"namespace without slash", post("/emit", `{"event":"e","namespace":"chat"}`), 400, "bad_request", "namespace"},
		{"bad room name", post("/emit", `{"event":"e","rooms":["ok","not ok"]}`), 400, "bad_request", "rooms[1]"},
		{"empty room name", post("/emit", `{"event":"e","rooms":[""]}`), 400, "bad_request", "rooms[0]"},
		{"bad except name", post("/emit", `{"event":"e","except":["a/b"]}`), 400, "bad_request", "except[0]"},
		// sockets
		{"join without join", post("/sockets/join", `{"rooms":["a"]}`), 400, "bad_request", "join"},
		{"join empty", post("/sockets/join", `{"join":[]}`), 400, "bad_request", "join"},
		{"join bad room", post("/sockets/join", `{"join":["a b"]}`), 400, "bad_request", "join[0]"},
		{"join not a list", post("/sockets/join", `{"join":"a"}`), 400, "bad_request", "join must be an array"},
		{"join unknown namespace", post("/sockets/join", `{"namespace":"/x","join":["a"]}`), 400, "bad_request", "namespace"},
		{"join with leave", post("/sockets/join", `{"leave":["a"]}`), 400, "bad_request", `"leave"`},
		{"leave without leave", post("/sockets/leave", `{}`), 400, "bad_request", "leave"},
		{"leave bad room", post("/sockets/leave", `{"leave":["ok"],"rooms":["#"]}`), 400, "bad_request", "rooms[0]"},
		{"disconnect close not a boolean", post("/sockets/disconnect", `{"close":"yes"}`), 400, "bad_request", "close must be a boolean"},
		{"disconnect unknown field", post("/sockets/disconnect", `{"all":true}`), 400, "bad_request", `"all"`},
		{"disconnect unknown namespace", post("/sockets/disconnect", `{"namespace":"/admin"}`), 400, "bad_request", "namespace"},
		{"list unknown namespace", get("/sockets?namespace=/nope"), 400, "bad_request", "namespace"},
		{"list bad room", get("/sockets?room=a%20b"), 400, "bad_request", "room[0]"},
		{"list unknown parameter", get("/sockets?rooms=a"), 400, "bad_request", `"rooms"`},
		{"list two namespaces", get("/sockets?namespace=/&namespace=/"), 400, "bad_request", "namespace"},
		{"stats with a parameter", get("/stats?x=1"), 400, "bad_request", `"x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.call.do(t, ts.URL)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", res.status, tt.status, res.raw)
			}
			code, msg := errorOf(t, res)
			if code != tt.code {
				t.Fatalf("code %q, want %q (%s)", code, tt.code, msg)
			}
			if !strings.Contains(msg, tt.mention) {
				t.Fatalf("message %q does not mention %q", msg, tt.mention)
			}
			if wa := res.header.Get("WWW-Authenticate"); (tt.status == 401) != strings.HasPrefix(wa, "Bearer") {
				t.Fatalf("status %d with WWW-Authenticate %q", tt.status, wa)
			}
		})
	}
}

func TestAPIDisabledWithoutKeys(t *testing.T) {
	ts := startServer(t, testConfig())
	for _, c := range []apiCall{
		post("/emit", `{"event":"e"}`),
		{method: "POST", path: "/emit", body: `{"event":"e"}`},
		get("/sockets"),
		get("/stats"),
		post("/sockets/disconnect", `{}`),
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			res := c.do(t, ts.URL)
			if res.status != http.StatusForbidden {
				t.Fatalf("status %d, want 403; body %s", res.status, res.raw)
			}
			if code, _ := errorOf(t, res); code != "api_disabled" {
				t.Fatalf("code %q, want api_disabled", code)
			}
		})
	}
	t.Run("openapi.json stays public", func(t *testing.T) {
		res := apiCall{method: "GET", path: "/openapi.json"}.do(t, ts.URL)
		if res.status != http.StatusOK || res.body["openapi"] == nil {
			t.Fatalf("status %d, body %.100s", res.status, res.raw)
		}
	})
}

func TestAPIAccepts(t *testing.T) {
	ts := startServer(t, apiConfig())
	tests := []struct {
		name   string
		call   apiCall
		status int
		want   string // the exact JSON body
	}{
		{"emit to nobody", post("/emit", `{"event":"e","data":{"a":1}}`), 202, `{"ok":true}`},
		{"a key twice inside data is the app's", post("/emit", `{"event":"e","data":{"a":1,"a":2}}`), 202, `{"ok":true}`},
		{"a key twice inside args is the app's", post("/emit", `{"event":"e","args":[{"rooms":1,"rooms":2}]}`), 202, `{"ok":true}`},
		{"emit with charset", apiCall{method: "POST", path: "/emit", key: testAPIKey, contentType: "application/json; charset=utf-8", body: `{"event":"e"}`}, 202, `{"ok":true}`},
		{"second key, lower-case scheme", apiCall{method: "POST", path: "/emit", auth: "bearer other-key", body: `{"event":"e"}`}, 202, `{"ok":true}`},
		{"emit every field", post("/emit", `{"namespace":"/","rooms":["a"],"except":["b"],"event":"e","args":[1,"x",null],"volatile":true}`), 202, `{"ok":true}`},
		{"null args means none", post("/emit", `{"event":"e","args":null}`), 202, `{"ok":true}`},
		{"acks from nobody", post("/emit", `{"event":"e","data":1,"ackTimeoutMs":60000}`), 200, `{"acks":[],"timedOut":false}`},
		{"join nobody", post("/sockets/join", `{"rooms":["a"],"join":["b"]}`), 200, `{"ok":true}`},
		{"leave nobody", post("/sockets/leave", `{"leave":["b"]}`), 200, `{"ok":true}`},
		{"disconnect nobody", post("/sockets/disconnect", `{"rooms":["a"],"close":true}`), 200, `{"ok":true}`},
		{"list nobody", get("/sockets?namespace=/&room=a"), 200, `{"sockets":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.call.do(t, ts.URL)
			if res.status != tt.status || strings.TrimSpace(res.raw) != tt.want {
				t.Fatalf("got %d %s, want %d %s", res.status, res.raw, tt.status, tt.want)
			}
		})
	}
}

func TestDecodeJSONDataPresence(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []any
	}{
		{"neither", `{"event":"e"}`, []any{}},
		{"null data is one null argument", `{"event":"e","data":null}`, []any{nil}},
		{"data", `{"event":"e","data":{"n":1.5}}`, []any{map[string]any{"n": 1.5}}},
		{"args", `{"event":"e","args":["a",2,true]}`, []any{"a", 2.0, true}},
		{"empty args", `{"event":"e","args":[]}`, []any{}},
		{"a key twice inside data: the last wins, as with JSON.parse", `{"event":"e","data":{"k":1,"k":2}}`, []any{map[string]any{"k": 2.0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := decodeJSON[emitRequest]([]byte(tt.body))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			args, err := req.args()
			if err != nil {
				t.Fatalf("args: %v", err)
			}
			eq(t, args, tt.want)
		})
	}
}
