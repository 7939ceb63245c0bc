// Command funchost stands in for the Azure Functions host where the real one
// cannot be installed: it starts a custom handler from an assembled Functions
// app folder the way the host does, and passes HTTP requests to it the way
// the host does in the two modes devicegate ships.
//
//	go run ./cmd/funchost -mode swa  -root ../dist/api         -addr 127.0.0.1:7071
//	go run ./cmd/funchost -mode flex -root ../dist/functionapp -addr 127.0.0.1:7071
//
// Modes (docs/DEPLOY.md, "Functions host mode"):
//   - swa: Static Web Apps managed functions. host.json sets
//     customHandler.enableForwardingHttpRequest; one function.json per API
//     route under routePrefix "api". The host rebuilds each request
//     (HttpRequestExtensions.ToHttpRequestMessage) and sends it with its own
//     HttpClient; forward.go has those rules. The SWA front (the SWA CLI in
//     tests) stands in front of this.
//   - flex: a Flex Consumption function app. host.json sets
//     customHandler.enableProxyingHttpRequest and routePrefix ""; one
//     catch-all function.json. The host proxies each request through YARP
//     (DefaultHttpWorkerService.ProxyInvocationRequest,
//     DefaultHttpProxyService); proxy.go has those rules. The stand-in is
//     alone in front: pages, assets and API on one origin.
//
// Sources: Azure/azure-functions-host (src/WebJobs.Script/...,
// src/WebJobs.Script.WebHost/...), dotnet/yarp (src/ReverseProxy/...) and
// dotnet/runtime (System.Net.Http), cited beside each rule. Start-up rules:
//   - HttpWorkerDescription.ApplyDefaultsAndValidate: a relative
//     defaultExecutablePath becomes root/path only if that file exists;
//     otherwise it is left to the PATH. A rooted path is used as is.
//   - HttpWorkerOptionsSetup: an empty workingDirectory is the app root, a
//     relative one is joined to it.
//   - DefaultWorkerProcessFactory: the arguments follow the executable; no
//     shell is involved.
//   - HttpWorkerProcess.CreateWorkerProcess: the worker gets
//     FUNCTIONS_CUSTOMHANDLER_PORT, FUNCTIONS_HTTPWORKER_PORT, the worker id
//     variables and FUNCTIONS_APP_ROOT_PATH.
//   - WorkerProcess.AssignUserExecutePermissionsIfNotExists (Linux
//     Consumption): the host tries to add the exec bits to the file it runs;
//     a failure is only logged as a warning.
//   - HttpWorkerOptions.InitializationTimeout (30 s): the worker must listen
//     on its port in time.
//   - stderr lines are logged as errors, stdout lines as information
//     (HttpWorkerDescription.UseStdErrorStreamForErrorsOnly).
//
// When the worker does not start, every request a function route matches
// gets 503 "Function host is not running.", which is what Static Web Apps
// answers in that case.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

type hostJSON struct {
	CustomHandler struct {
		Description struct {
			DefaultExecutablePath string   `json:"defaultExecutablePath"`
			WorkingDirectory      string   `json:"workingDirectory"`
			Arguments             []string `json:"arguments"`
		} `json:"description"`
		EnableForwardingHTTPRequest bool            `json:"enableForwardingHttpRequest"`
		EnableProxyingHTTPRequest   bool            `json:"enableProxyingHttpRequest"`
		Port                        json.RawMessage `json:"port"`
	} `json:"customHandler"`
	ConfigurationProfile string `json:"configurationProfile"`
	Extensions           struct {
		HTTP struct {
			RoutePrefix *string `json:"routePrefix"`
		} `json:"http"`
	} `json:"extensions"`
}

// Modes the stand-in plays.
const (
	modeSWA  = "swa"
	modeFlex = "flex"
)

// checkMode refuses a host.json the real host would run in another way than
// mode says, so the stand-in never plays a mode the package does not ask for.
// DefaultHttpWorkerService.InvokeAsync: enableProxyingHttpRequest is checked
// first and wins; enableForwardingHttpRequest is the classic rebuild; with
// neither, an HTTP function gets the JSON invocation payload, which devicegate
// does not speak.
func checkMode(mode string, h hostJSON) error {
	ch := h.CustomHandler
	if h.ConfigurationProfile != "" {
		return fmt.Errorf("host.json: configurationProfile %q is not emulated (docs/DEPLOY.md, \"Functions host mode\")", h.ConfigurationProfile)
	}
	switch mode {
	case modeSWA:
		if ch.EnableProxyingHTTPRequest || !ch.EnableForwardingHTTPRequest {
			return errors.New("host.json: mode swa needs customHandler.enableForwardingHttpRequest and not enableProxyingHttpRequest")
		}
	case modeFlex:
		if !ch.EnableProxyingHTTPRequest {
			return errors.New("host.json: mode flex needs customHandler.enableProxyingHttpRequest")
		}
	default:
		return fmt.Errorf("unknown -mode %q (swa or flex)", mode)
	}
	return nil
}

type route struct {
	name     string
	segments []string
	methods  map[string]bool
}

func main() {
	root := flag.String("root", ".", "the Functions app folder (host.json, function folders)")
	addr := flag.String("addr", "127.0.0.1:7071", "listen address")
	mode := flag.String("mode", modeSWA, "which host to play: swa (Static Web Apps managed functions, request forwarding) or flex (Flex Consumption, request proxying, alone in front)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("funchost: ")
	if err := run(*root, *addr, *mode); err != nil {
		log.Fatal(err)
	}
}

func run(root, addr, mode string) error {
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	var h hostJSON
	b, err := os.ReadFile(filepath.Join(root, "host.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return fmt.Errorf("host.json: %w", err)
	}
	if err := checkMode(mode, h); err != nil {
		return err
	}
	// HttpOptions.RoutePrefix (Microsoft.Azure.WebJobs.Extensions.Http)
	// defaults to "api"; WebScriptHostHttpRoutesManager puts it in front
	// of every function route.
	prefix := "api"
	if p := h.Extensions.HTTP.RoutePrefix; p != nil {
		prefix = *p
	}
	routes, err := loadRoutes(root, prefix)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var target atomic.Pointer[url.URL]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	worker, done, err := startWorker(ctx, root, h, &target)
	if err != nil {
		// The host logs the failure and keeps answering: the site stays up,
		// the API answers 503.
		log.Printf("error: the custom handler did not start: %v", err)
	}
	srv := &http.Server{Handler: newHost(mode, routes, &target), ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	log.Printf("listening on %s, mode %s, app root %s", ln.Addr(), mode, root)
	err = srv.Serve(ln)
	if worker != nil {
		_ = worker.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(25 * time.Second):
			_ = worker.Process.Kill()
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// startWorker starts the custom handler and waits until it listens; done is
// closed when the worker exits.
func startWorker(ctx context.Context, root string, h hostJSON, target *atomic.Pointer[url.URL]) (cmd *exec.Cmd, done <-chan struct{}, err error) {
	d := h.CustomHandler.Description
	exe := d.DefaultExecutablePath
	if exe == "" {
		return nil, nil, errors.New("WorkerDescription DefaultExecutablePath cannot be empty")
	}
	if !filepath.IsAbs(exe) {
		if full := filepath.Join(root, exe); fileExists(full) {
			exe = full
		}
	}
	wd := d.WorkingDirectory
	switch {
	case wd == "":
		wd = root
	case !filepath.IsAbs(wd):
		wd = filepath.Join(root, wd)
	}
	if fileExists(exe) {
		assignExecute(exe)
	}
	// HttpWorkerOptionsSetup.GetPort: customHandler.port when it parses as
	// a number (written as one or as a string), else an unused port.
	port, err := strconv.Atoi(strings.Trim(string(h.CustomHandler.Port), `"`))
	if err != nil {
		if port, err = freePort(); err != nil {
			return nil, nil, err
		}
	}
	cmd = exec.Command(exe, d.Arguments...)
	cmd.Dir = wd
	id := fmt.Sprintf("funchost-%d", os.Getpid())
	cmd.Env = append(os.Environ(),
		"FUNCTIONS_CUSTOMHANDLER_PORT="+strconv.Itoa(port), "FUNCTIONS_HTTPWORKER_PORT="+strconv.Itoa(port),
		"FUNCTIONS_CUSTOMHANDLER_WORKER_ID="+id, "FUNCTIONS_HTTPWORKER_ID="+id,
		"FUNCTIONS_APP_ROOT_PATH="+root)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	log.Printf("starting worker process with FileName:%s WorkingDirectory:%s Arguments:%s", exe, wd, strings.Join(d.Arguments, " "))
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("failed to start worker process %s: %w", exe, err)
	}
	relayed := make(chan struct{}, 2)
	go relay(stdout, "Information", relayed)
	go relay(stderr, "Error", relayed)
	exited := make(chan error, 1)
	closed := make(chan struct{})
	go func() {
		<-relayed
		<-relayed
		err := cmd.Wait()
		close(closed)
		exited <- err
	}()

	u := &url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case err := <-exited:
			return nil, nil, fmt.Errorf("%s exited: %v", exe, err)
		case <-deadline:
			_ = cmd.Process.Kill()
			return nil, nil, errors.New("the worker did not listen on its port within 30 s")
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return nil, nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		c, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err == nil {
			c.Close()
			target.Store(u)
			go func() {
				err := <-exited
				target.Store(nil)
				log.Printf("error: language worker process exited: %v", err)
			}()
			return cmd, closed, nil
		}
	}
}

// assignExecute does what the host does on Linux Consumption before it starts
// the worker: add the exec bits if the owner's is missing; log a failure.
func assignExecute(path string) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&0o100 != 0 {
		return
	}
	if err := os.Chmod(path, fi.Mode()|0o111); err != nil {
		log.Printf("warning: error while assigning execute permission: %v", err)
	}
}

func relay(r io.Reader, level string, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		log.Printf("[worker %s] %s", level, s.Text())
	}
	_, _ = io.Copy(io.Discard, r)
}

// loadRoutes reads every function folder's httpTrigger route and methods.
func loadRoutes(root, prefix string) ([]route, error) {
	files, err := filepath.Glob(filepath.Join(root, "*", "function.json"))
	if err != nil {
		return nil, err
	}
	var routes []route
	for _, f := range files {
		var fj struct {
			Bindings []struct {
				Type    string   `json:"type"`
				Route   string   `json:"route"`
				Methods []string `json:"methods"`
			} `json:"bindings"`
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &fj); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		name := filepath.Base(filepath.Dir(f))
		for _, bd := range fj.Bindings {
			if bd.Type != "httpTrigger" {
				continue
			}
			path := bd.Route
			if path == "" {
				path = name
			}
			// A trigger without methods has no method constraint.
			rt := route{name: name}
			if len(bd.Methods) > 0 {
				rt.methods = map[string]bool{}
			}
			for _, s := range strings.Split(strings.Trim(prefix+"/"+path, "/"), "/") {
				if s != "" {
					rt.segments = append(rt.segments, s)
				}
			}
			for _, m := range bd.Methods {
				rt.methods[strings.ToLower(m)] = true
			}
			routes = append(routes, rt)
		}
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("no function with an httpTrigger under %s", root)
	}
	return routes, nil
}

// match finds the function whose route template and methods take the
// request. WebScriptHostHttpRoutesManager.InitializeHttpFunctionRoutes maps
// each httpTrigger's route (the function's name when route is empty) under
// the route prefix, with an HttpMethodRouteConstraint of its methods: a
// method the function does not list matches no route at all (no 405).
// Templates (ASP.NET Core routing): literal segments compared without
// regard to case, {name}, optional {name?} as the last segment, and a
// catch-all {*name}, which also matches nothing (so "{*path}" under an
// empty prefix takes "/").
func match(routes []route, path, method string) *route {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) == 1 && parts[0] == "" {
		parts = nil
	}
	for i := range routes {
		if matchSegments(routes[i].segments, parts) && (routes[i].methods == nil || routes[i].methods[strings.ToLower(method)]) {
			return &routes[i]
		}
	}
	return nil
}

func matchSegments(tpl, parts []string) bool {
	for i, t := range tpl {
		param := strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}")
		switch {
		case param && strings.HasPrefix(t, "{*"):
			return true
		case i >= len(parts):
			return param && strings.HasSuffix(t, "?}") && i == len(tpl)-1
		case param:
			continue
		case !strings.EqualFold(t, parts[i]):
			return false
		}
	}
	return len(parts) == len(tpl)
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
