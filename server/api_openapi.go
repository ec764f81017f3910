package server

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3 document of the HTTP API, written by hand; api_openapi_test.go checks
// that it lists exactly the routes the router serves and the fields each handler accepts.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI answers GET /api/v1/openapi.json; it needs no key.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
