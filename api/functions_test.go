package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/httpapi"
)

// functionJSON is the part of an Azure Functions function.json we check.
type functionJSON struct {
	Bindings []struct {
		Type      string   `json:"type"`
		Direction string   `json:"direction"`
		AuthLevel string   `json:"authLevel"`
		Methods   []string `json:"methods"`
		Route     string   `json:"route"`
	} `json:"bindings"`
}

// TestFunctionsMatchRoutes: every router route has a function folder with
// the same route and methods, and every function folder has a route, so
// the Azure packaging and the router cannot drift apart.
func TestFunctionsMatchRoutes(t *testing.T) {
	files, err := filepath.Glob("*/function.json")
	if err != nil {
		t.Fatal(err)
	}
	functions := map[string]functionJSON{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var fj functionJSON
		if err := json.Unmarshal(b, &fj); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		functions[filepath.Dir(f)] = fj
	}
	routes := httpapi.Routes()
	for _, r := range routes {
		fj, ok := functions[r.Name]
		if !ok {
			t.Errorf("route %s (%s) has no %s/function.json", r.Name, r.Path, r.Name)
			continue
		}
		var in, out int
		for _, b := range fj.Bindings {
			switch {
			case b.Type == "httpTrigger" && b.Direction == "in":
				in++
				wantRoute := strings.TrimPrefix(r.Path, "/api/")
				if r.Tail != "" {
					// An optional segment (Azure Functions route syntax).
					wantRoute += "/{" + r.Tail + "?}"
				}
				if b.Route != wantRoute {
					t.Errorf("%s: function route %q, want %q for router path %q", r.Name, b.Route, wantRoute, r.Path)
				}
				var got, want []string
				for _, m := range b.Methods {
					got = append(got, strings.ToUpper(m))
				}
				want = append(want, r.Methods...)
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s: function methods %v, router methods %v", r.Name, got, want)
				}
				if b.AuthLevel != "anonymous" {
					t.Errorf("%s: authLevel %q; devicegate authenticates clients itself", r.Name, b.AuthLevel)
				}
			case b.Type == "http" && b.Direction == "out":
				out++
			}
		}
		if in != 1 || out != 1 {
			t.Errorf("%s: want one httpTrigger in and one http out binding", r.Name)
		}
	}
	for name := range functions {
		if !slices.ContainsFunc(routes, func(r httpapi.Route) bool { return r.Name == name }) {
			t.Errorf("function %s has no router route", name)
		}
	}
}

// TestHostJSON checks the custom-handler settings Azure needs.
func TestHostJSON(t *testing.T) {
	b, err := os.ReadFile("../host.json")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Version       string `json:"version"`
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string `json:"defaultExecutablePath"`
			} `json:"description"`
			EnableForwardingHTTPRequest bool `json:"enableForwardingHttpRequest"`
		} `json:"customHandler"`
		Extensions struct {
			HTTP struct {
				RoutePrefix string `json:"routePrefix"`
			} `json:"http"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	if h.Version != "2.0" || h.CustomHandler.Description.DefaultExecutablePath != "handler" ||
		!h.CustomHandler.EnableForwardingHTTPRequest || h.Extensions.HTTP.RoutePrefix != "api" {
		t.Errorf("host.json: %+v", h)
	}
}

// TestBicepSettingsAreDocumented: every DEVICEGATE_* app setting the Bicep
// template writes is one devicegate reads and documents, so a renamed
// variable cannot leave a deployment silently misconfigured.
func TestBicepSettingsAreDocumented(t *testing.T) {
	b, err := os.ReadFile("../infra/main.bicep")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, v := range config.Vars {
		known[v.Name] = true
	}
	found := regexp.MustCompile(`(?m)^\s*(DEVICEGATE_[A-Z_]+):`).FindAllStringSubmatch(string(b), -1)
	if len(found) < 10 {
		t.Fatalf("found only %d settings in main.bicep", len(found))
	}
	for _, m := range found {
		if !known[m[1]] {
			t.Errorf("main.bicep sets %s, which devicegate does not read", m[1])
		}
	}
}
