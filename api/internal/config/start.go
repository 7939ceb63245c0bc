package config

import (
	"errors"
	"strings"
)

// Getenv is os.Getenv over environ (os.Environ form, NAME=value); of a
// name set twice, the last value wins.
func Getenv(environ []string) func(string) string {
	vars := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	return func(k string) string { return vars[k] }
}

// ListenEnv returns getenv with DEVICEGATE_ADDR decided: the -addr flag
// first; else, in a container (PORT set, as Knative-style platforms and
// devicegate's Container Apps template do, and not under the Functions host,
// whose FUNCTIONS_CUSTOMHANDLER_PORT Load reads itself), every interface
// on PORT, since the platform's ingress reaches the container from outside.
func ListenEnv(getenv func(string) string, addrFlag string) func(string) string {
	addr := addrFlag
	if addr == "" && getenv("DEVICEGATE_ADDR") == "" && getenv("FUNCTIONS_CUSTOMHANDLER_PORT") == "" {
		if port := getenv("PORT"); port != "" {
			addr = ":" + port
		}
	}
	if addr == "" {
		return getenv
	}
	return func(k string) string {
		if k == "DEVICEGATE_ADDR" {
			return addr
		}
		return getenv(k)
	}
}

// Explain adds to an error of Load what a newcomer needs next: the
// variables set under a name no setting reads (the misspelling that
// probably caused a "required" above), and, when nothing names a provider
// app or a device client yet, that -demo runs the whole flow without one.
// demo says whether -demo was given. Other errors are returned as they are.
func Explain(err error, environ []string, demo bool) error {
	var le *LoadError
	if !errors.As(err, &le) {
		return err
	}
	getenv := Getenv(environ)
	msg := err.Error()
	if unknown := le.UnknownVariables(environ); len(unknown) > 0 {
		msg += "\nSet but read by no setting (misspelled?):\n" + strings.Join(unknown, "\n")
	}
	if !demo && getenv("DEVICEGATE_CLIENTS") == "" && getenv("DEVICEGATE_CLIENTS_FILE") == "" && getenv("DEVICEGATE_UPSTREAM_CLIENT_ID") == "" {
		msg += "\nTo try devicegate first, without an account at a provider, start it with -demo (go run ./api -demo, or devicegate -demo): " +
			"a built-in demo provider and device client. README.md says how to set it up for real."
	}
	return errors.New(msg)
}
