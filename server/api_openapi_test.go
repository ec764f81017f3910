package server

import (
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"
)

// openAPIDoc is the part of an OpenAPI 3 document these tests read.
type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		RequestBody *struct {
			Content map[string]struct {
				Schema struct {
					Ref string `json:"$ref"`
				} `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
		Parameters []struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
		Responses map[string]json.RawMessage `json:"responses"`
	} `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties           map[string]json.RawMessage `json:"properties"`
			Required             []string                   `json:"required"`
			AdditionalProperties *bool                      `json:"additionalProperties"`
		} `json:"schemas"`
	} `json:"components"`
}

// requestTypes are the structs the API's handlers decode bodies into, by route.
var requestTypes = map[string]reflect.Type{
	"POST /emit":               reflect.TypeFor[emitRequest](),
	"POST /sockets/join":       reflect.TypeFor[joinRequest](),
	"POST /sockets/leave":      reflect.TypeFor[leaveRequest](),
	"POST /sockets/disconnect": reflect.TypeFor[disconnectRequest](),
}

// queryParams are the query parameters GET handlers accept, by route.
var queryParams = map[string]map[string]bool{
	"GET /sockets":      socketsQuery,
	"GET /stats":        nil,
	"GET /openapi.json": nil,
}

func TestOpenAPIMatchesTheHandlers(t *testing.T) {
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q, want 3.x", doc.OpenAPI)
	}

	s, err := New(apiConfig(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.closeSockets)
	var served []string
	err = chi.Walk(s.api(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served = append(served, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	eq(t, documented, served)

	for _, route := range served {
		method, path, _ := strings.Cut(route, " ")
		op := doc.Paths[path][strings.ToLower(method)]
		t.Run(route, func(t *testing.T) {
			reqType, hasBody := requestTypes[route]
			if (op.RequestBody != nil) != hasBody {
				t.Fatalf("documented body: %v, handler decodes a body: %v", op.RequestBody != nil, hasBody)
			}
			if !hasBody {
				want, ok := queryParams[route]
				if !ok {
					t.Fatalf("no request struct or query parameters are known for %s: add them to this test", route)
				}
				var params []string
				for _, p := range op.Parameters {
					if p.In != "query" {
						t.Fatalf("parameter %q is in %s, not the query", p.Name, p.In)
					}
					params = append(params, p.Name)
				}
				slices.Sort(params)
				eq(t, params, slices.Sorted(maps.Keys(want)))
				return
			}
			media, ok := op.RequestBody.Content["application/json"]
			if !ok || len(op.RequestBody.Content) != 1 {
				t.Fatalf("request body must be application/json only")
			}
			name, ok := strings.CutPrefix(media.Schema.Ref, "#/components/schemas/")
			schema, found := doc.Components.Schemas[name]
			if !ok || !found {
				t.Fatalf("request schema %q does not resolve", media.Schema.Ref)
			}
			fields := slices.Sorted(maps.Keys(jsonFields(reqType)))
			eq(t, slices.Sorted(maps.Keys(schema.Properties)), fields)
			if schema.AdditionalProperties == nil || *schema.AdditionalProperties {
				t.Fatalf("schema %s must say additionalProperties: false (unknown fields are a 400)", name)
			}
			for _, r := range schema.Required {
				if _, ok := schema.Properties[r]; !ok {
					t.Fatalf("schema %s requires %q, which it does not define", name, r)
				}
			}
			for _, status := range []string{"400", "401", "403", "408", "413", "415"} {
				if _, ok := op.Responses[status]; !ok {
					t.Fatalf("responses lack %s", status)
				}
			}
		})
	}
	for route := range requestTypes {
		if !slices.Contains(served, route) {
			t.Errorf("%s is in requestTypes but not served", route)
		}
	}
}

func TestOpenAPIIsServed(t *testing.T) {
	ts := startServer(t, apiConfig())
	res := apiCall{method: http.MethodGet, path: "/openapi.json"}.do(t, ts.URL)
	var want map[string]any
	if err := json.Unmarshal(openAPI, &want); err != nil {
		t.Fatal(err)
	}
	if res.status != http.StatusOK {
		t.Fatalf("status %d", res.status)
	}
	eq(t, res.body, want)
}
