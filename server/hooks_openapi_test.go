package server

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

// schemaDoc is the part of openapi.json the webhook checks read.
type schemaDoc struct {
	OpenAPI  string `json:"openapi"`
	Webhooks map[string]map[string]struct {
		Security    []any `json:"security"`
		RequestBody struct {
			Content map[string]struct {
				Schema struct {
					Ref string `json:"$ref"`
				} `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
		Parameters []struct {
			Ref string `json:"$ref"`
		} `json:"parameters"`
		Responses map[string]json.RawMessage `json:"responses"`
	} `json:"webhooks"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]struct {
				Enum []any `json:"enum"`
			} `json:"properties"`
			Required []string `json:"required"`
		} `json:"schemas"`
		Parameters map[string]struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
	} `json:"components"`
}

// refs lists every "$ref" in a JSON document.
func refs(v any) []string {
	var out []string
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if s, ok := e.(string); ok && k == "$ref" {
				out = append(out, s)
			}
			out = append(out, refs(e)...)
		}
	case []any:
		for _, e := range t {
			out = append(out, refs(e)...)
		}
	}
	return out
}

// TestOpenAPIWebhooks: openapi.json (OpenAPI 3.1) documents the three hooks as webhooks, with
// the signature headers; every $ref resolves; the request schemas hold every field of the bodies
// Switchboard really sends (captured from a node), and the answer schemas the fields package
// hooks reads.
func TestOpenAPIWebhooks(t *testing.T) {
	var doc schemaDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi = %q: webhooks need 3.1", doc.OpenAPI)
	}
	var whole any
	_ = json.Unmarshal(openAPI, &whole)
	for _, ref := range refs(whole) {
		parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
		var at any = whole
		for _, p := range parts {
			m, _ := at.(map[string]any)
			at = m[p]
		}
		if !strings.HasPrefix(ref, "#/") || at == nil {
			t.Errorf("$ref %q does not resolve", ref)
		}
	}
	requests := map[string]string{"connect": "ConnectHookRequest", "event": "EventHookRequest", "events": "EventsHookRequest"}
	eq(t, slices.Sorted(maps.Keys(doc.Webhooks)), slices.Sorted(maps.Keys(requests)))
	for name, ops := range doc.Webhooks {
		op, ok := ops["post"]
		if !ok || len(ops) != 1 {
			t.Errorf("webhook %s: want a post only", name)
			continue
		}
		if op.Security == nil || len(op.Security) != 0 {
			t.Errorf("webhook %s: want security [] (signed, not an API key)", name)
		}
		if got := op.RequestBody.Content["application/json"].Schema.Ref; got != "#/components/schemas/"+requests[name] {
			t.Errorf("webhook %s: body schema %q", name, got)
		}
		var headers []string
		for _, p := range op.Parameters {
			param := doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
			if param.In == "header" {
				headers = append(headers, param.Name)
			}
		}
		slices.Sort(headers)
		eq(t, headers, []string{"X-Switchboard-Signature", "X-Switchboard-Timestamp"})
	}

	// The answers' fields, as package hooks decodes them (decodeConnect, decodeEvent, decodeEmits).
	answers := map[string][]string{
		"ConnectHookAnswer": {"data", "rooms", "user"},
		"EventHookAnswer":   {"ack", "disconnect", "emit", "join", "leave"},
		"HookEmit":          {"args", "event", "except", "rooms", "toSelf"},
		"HookError":         {"error"},
	}
	for name, want := range answers {
		eq(t, slices.Sorted(maps.Keys(doc.Components.Schemas[name].Properties)), want)
	}

	// Real bodies, from a node with every hook.
	b := newTestBackend(t)
	cfg := hookConfig(b, true)
	cfg.Namespaces = []string{"/game"}
	ts := startServer(t, cfg)
	c := mustHookDial(t, ts, "/game", hookDialOptions{auth: `{"name":"Ann"}`})
	c.call(t, "/game", "move", `{"x":1}`, 1)
	chat := mustRawDial(t, ts, "/chat")
	chat.call(t, "/chat", "chat:join", `{"room":"r"}`, 1)
	chat.call(t, "/chat", "chat:leave", `{"room":"r"}`, 2)
	c.close()
	waitFor(t, "every type of event", func() bool {
		kinds := map[any]bool{}
		for _, e := range b.ackedEvents(nil) {
			kinds[e["type"]] = true
		}
		return len(kinds) == 6
	})

	conforms := func(what string, body map[string]any, schema string) {
		t.Helper()
		s, ok := doc.Components.Schemas[schema]
		if !ok {
			t.Fatalf("no schema %s", schema)
		}
		for k := range body {
			if _, ok := s.Properties[k]; !ok {
				t.Errorf("%s: field %q is not in schema %s", what, k, schema)
			}
		}
		for _, r := range s.Required {
			if _, ok := body[r]; !ok {
				t.Errorf("%s: lacks %q, which schema %s requires", what, r, schema)
			}
		}
	}
	decode := func(raw []byte) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, raw := range b.rawBodies("connect") {
		body := decode(raw)
		conforms("connect", body, "ConnectHookRequest")
		sock, _ := body["socket"].(map[string]any)
		eq(t, slices.Sorted(maps.Keys(sock)), []string{"id", "namespace", "user"})
	}
	for _, raw := range b.rawBodies("event") {
		body := decode(raw)
		conforms("event", body, "EventHookRequest")
		sock, _ := body["socket"].(map[string]any)
		conforms("event socket", sock, "HookSocket")
	}
	seen := map[string]bool{}
	for _, raw := range b.rawBodies("events") {
		body := decode(raw)
		conforms("events", body, "EventsHookRequest")
		list, _ := body["events"].([]any)
		for _, e := range list {
			ev, _ := e.(map[string]any)
			conforms("an event", ev, "HookEvent")
			ty, _ := ev["type"].(string)
			seen[ty] = true
			if !slices.Contains(doc.Components.Schemas["HookEvent"].Properties["type"].Enum, any(ty)) {
				t.Errorf("event type %q is not in the schema's enum", ty)
			}
			if s, ok := ev["socket"].(map[string]any); ok {
				conforms(ty+" socket", s, "HookSocket")
			}
		}
	}
	var enum []string
	for _, v := range doc.Components.Schemas["HookEvent"].Properties["type"].Enum {
		enum = append(enum, v.(string))
	}
	slices.Sort(enum)
	eq(t, slices.Sorted(maps.Keys(seen)), enum)
}
