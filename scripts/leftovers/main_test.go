package main

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLeftovers(t *testing.T) {
	pidfile := t.TempDir() + "/pid"
	for _, tc := range []struct {
		name   string
		script string
		code   int
		report string // a regexp the report must match; "" = no report
	}{
		{"clean", "sleep 0.1 & wait", 0, ""},
		{"failure passes through", "exit 3", 3, ""},
		// Ends 0.3 s after bash, well within the grace this case gets.
		{"stopped in time", "sleep 30 & p=$!; (sleep 0.3; kill $p) & exit 0", 0, ""},
		// The parent exits first: the orphan is re-parented to us, not to init.
		{"orphan", "sh -c 'sleep 31 & echo $! >" + pidfile + "' ; exit 0", 1, `(?m)^leftovers: 1 process\(es\) started by bash were still running .* after it ended:\n  pid \d+: sleep 31$`},
		{"own process group", "set -m; sleep 32 & echo $! >" + pidfile + "; exit 0", 1, `pid \d+: sleep 32`},
		{"orphan of a failing command", "sleep 33 & echo $! >" + pidfile + "; exit 4", 4, `pid \d+: sleep 33`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(pidfile)
			var stderr bytes.Buffer
			// A leftover is reported after the grace whatever the load, so
			// 1 s keeps those cases quick; a process that ends on its own
			// must be given a grace no loaded machine outlasts (with 1 s,
			// a late "sleep 0.3; kill" read as a leftover).
			grace := time.Second
			if tc.code == 0 {
				grace = time.Minute
			}
			code := run([]string{"bash", "-c", tc.script}, &stderr, grace)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if tc.report == "" {
				if stderr.String() != "leftovers: no process started by bash outlived it\n" {
					t.Errorf("reported %q", stderr.String())
				}
				return
			}
			if !regexp.MustCompile(tc.report).MatchString(stderr.String()) {
				t.Errorf("report %q does not match %s", stderr.String(), tc.report)
			}
			b, err := os.ReadFile(pidfile)
			if err != nil {
				t.Fatal(err)
			}
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				t.Errorf("the leftover %d is still running", pid)
			}
		})
	}
}
