package web

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestOpenAPIMatchesTheRoutes keeps openapi.json and the public route table
// equal: every route under /api/, /v1/, /t and /healthz is documented, and every
// documented operation is a route.
func TestOpenAPIMatchesTheRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" {
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	s := &Server{}
	routed := map[string]bool{}
	for _, rt := range s.publicRoutes() {
		if strings.HasPrefix(rt.path, "/api/") || strings.HasPrefix(rt.path, "/v1/") || rt.path == "/t" || rt.path == "/healthz" {
			routed[rt.method+" "+rt.path] = true
		}
	}
	for op := range routed {
		if !documented[op] {
			t.Errorf("route %s is not in openapi.json", op)
		}
	}
	for op := range documented {
		if !routed[op] {
			t.Errorf("openapi.json documents %s, which is not a route", op)
		}
	}
}
