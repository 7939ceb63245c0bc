package main

import (
	"encoding/json"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/devicegate/devicegate/api/internal/config"
	"github.com/devicegate/devicegate/api/internal/httpapi"
	"github.com/devicegate/devicegate/api/internal/upstream"
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

// TestHostJSON checks the custom-handler settings Azure needs: the host runs
// /bin/sh with launch.sh (which needs no exec bit, see api/launch.sh) and
// forwards the original HTTP request; the handler's console output and the
// worker's start-up errors are logged.
func TestHostJSON(t *testing.T) {
	b, err := os.ReadFile("../host.json")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Version       string `json:"version"`
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string   `json:"defaultExecutablePath"`
				Arguments             []string `json:"arguments"`
			} `json:"description"`
			EnableForwardingHTTPRequest bool `json:"enableForwardingHttpRequest"`
		} `json:"customHandler"`
		Extensions struct {
			HTTP struct {
				RoutePrefix string `json:"routePrefix"`
			} `json:"http"`
		} `json:"extensions"`
		Logging struct {
			LogLevel map[string]string `json:"logLevel"`
		} `json:"logging"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	d := h.CustomHandler.Description
	if h.Version != "2.0" || d.DefaultExecutablePath != "/bin/sh" || !slices.Equal(d.Arguments, []string{"launch.sh"}) ||
		!h.CustomHandler.EnableForwardingHTTPRequest || h.Extensions.HTTP.RoutePrefix != "api" {
		t.Errorf("host.json: %+v", h)
	}
	if _, err := os.Stat(d.Arguments[0]); err != nil {
		t.Errorf("host.json runs %s, which scripts/assemble.sh copies from api/: %v", d.Arguments[0], err)
	}
	// The host logs the handler's stderr as errors under
	// Host.Function.Console and the worker's exit under Worker.*; neither may
	// be filtered out, or a handler that does not start leaves no trace.
	for _, category := range []string{"Host.Function.Console", "Worker"} {
		if lvl := h.Logging.LogLevel[category]; lvl != "Information" {
			t.Errorf("host.json logLevel %s = %q; want Information", category, lvl)
		}
	}
}

// TestHostJSONHasNoExtensionBundle: both host.json files leave out
// extensionBundle. devicegate's functions are HTTP only, and the host
// carries the HTTP trigger itself (azure-functions-host
// ScriptStartupTypeLocator: HttpWebJobsStartup is a built-in extension;
// WebJobs.Script.csproj references Microsoft.Azure.WebJobs.Extensions.Http);
// with a bundle configured the host resolves and loads it at every cold
// start (GetExtensionBundleBinPathAsync) for nothing (docs/DEPLOY.md,
// "Functions host mode").
func TestHostJSONHasNoExtensionBundle(t *testing.T) {
	for _, f := range []string{"../host.json", "functionapp/host.json"} {
		var h map[string]json.RawMessage
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &h); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, ok := h["extensionBundle"]; ok {
			t.Errorf("%s has an extensionBundle; HTTP-only functions need none", f)
		}
	}
}

// TestFlexPackage checks api/functionapp, the Flex Consumption package:
// its host.json is the root one but for the request proxying and the empty
// route prefix, and its one catch-all function takes every path and every
// method the handler serves, pages and well-known included, anonymously.
func TestFlexPackage(t *testing.T) {
	read := func(f string) map[string]any {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		return m
	}
	swa, flex := read("../host.json"), read("functionapp/host.json")
	sch, fch := swa["customHandler"].(map[string]any), flex["customHandler"].(map[string]any)
	if fch["enableProxyingHttpRequest"] != true || fch["enableForwardingHttpRequest"] != nil {
		t.Errorf("functionapp/host.json customHandler %v: want enableProxyingHttpRequest and no forwarding", fch)
	}
	if _, ok := flex["configurationProfile"]; ok {
		t.Error("functionapp/host.json sets a configurationProfile (docs/DEPLOY.md: a catch-all function.json instead)")
	}
	if p := flex["extensions"].(map[string]any)["http"].(map[string]any)["routePrefix"]; p != "" {
		t.Errorf("functionapp/host.json routePrefix %v, want empty: the handler serves / and /.well-known too", p)
	}
	// Everything else is the same as the Static Web Apps package.
	for _, k := range []string{"version", "logging"} {
		if a, b := mustJSON(t, swa[k]), mustJSON(t, flex[k]); a != b {
			t.Errorf("host.json %s differs between the packages:\n%s\n%s", k, a, b)
		}
	}
	if a, b := mustJSON(t, sch["description"]), mustJSON(t, fch["description"]); a != b {
		t.Errorf("customHandler.description differs between the packages:\n%s\n%s", a, b)
	}

	files, _ := filepath.Glob("functionapp/*/function.json")
	if len(files) != 1 {
		t.Fatalf("functionapp has %d functions, want one catch-all", len(files))
	}
	var fj functionJSON
	if err := json.Unmarshal([]byte(mustJSON(t, read(files[0]))), &fj); err != nil {
		t.Fatal(err)
	}
	var trig int
	for _, b := range fj.Bindings {
		if b.Type != "httpTrigger" {
			continue
		}
		trig++
		if b.Route != "{*path}" || b.AuthLevel != "anonymous" {
			t.Errorf("%s: route %q authLevel %q, want {*path} anonymous", files[0], b.Route, b.AuthLevel)
		}
		// The host maps the listed methods as a route constraint
		// (WebScriptHostHttpRoutesManager: HttpMethodRouteConstraint); a
		// method not listed never reaches the handler. The pages and
		// /.well-known answer GET and HEAD.
		want := map[string]bool{"GET": true, "HEAD": true}
		for _, r := range httpapi.Routes() {
			for _, m := range r.Methods {
				want[m] = true
			}
		}
		var got []string
		for _, m := range b.Methods {
			got = append(got, strings.ToUpper(m))
		}
		wantList := slices.Sorted(maps.Keys(want))
		slices.Sort(got)
		if !slices.Equal(got, wantList) {
			t.Errorf("%s: methods %v, want %v", files[0], got, wantList)
		}
	}
	if trig != 1 {
		t.Errorf("%s: %d httpTrigger bindings, want 1", files[0], trig)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
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

// TestStaticCSPNamesNoProvider: the static pages' policy must not name a
// provider. The pages only post to /api/verify; the confirmation page (an
// API answer) gets devicegate's own policy listing the configured
// providers. A provider hard-coded here would be wrong for every fork set
// up for another one.
func TestStaticCSPNamesNoProvider(t *testing.T) {
	b, err := os.ReadFile("../staticwebapp.config.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		GlobalHeaders map[string]string `json:"globalHeaders"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	csp := cfg.GlobalHeaders["Content-Security-Policy"]
	if !strings.Contains(csp, "form-action 'self';") {
		t.Errorf("static CSP form-action should be 'self' only: %q", csp)
	}
	for _, name := range upstream.Names() {
		p, _ := upstream.Lookup(name)
		if u, err := url.Parse(p.AuthURL); err == nil && u.Host != "" && strings.Contains(string(b), u.Host) {
			t.Errorf("staticwebapp.config.json names provider %s (%s)", name, u.Host)
		}
	}
}
