// Command leftovers runs a command and fails if any process it started is
// still running after it ends.
//
//	go build -o /tmp/leftovers ./scripts/leftovers && /tmp/leftovers bash .ci/run
//
// It makes itself a child subreaper (Linux prctl PR_SET_CHILD_SUBREAPER):
// every process the command starts, however deep and whether or not its
// parent exits first, is re-parented to it instead of to init. So once the
// command has exited, any child left is a process that outlived the script
// that started it, such as a server a cleanup trap failed to stop. It
// waits a few seconds for them to finish shutting down, then names each
// one, kills it and exits 1 (or the command's own non-zero status).
// This is how .ci/run proves that nothing it started outlives it.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const prSetChildSubreaper = 36 // linux/prctl.h

func main() {
	os.Exit(run(os.Args[1:], os.Stderr, 5*time.Second))
}

// run runs args as a child subreaper, returns the exit status to use, and
// reports leftovers to stderr after waiting up to grace for them to end.
func run(args []string, stderr io.Writer, grace time.Duration) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: leftovers COMMAND [ARG...]")
		return 2
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		fmt.Fprintf(stderr, "leftovers: cannot become a child subreaper: %v\n", e)
		return 2
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "leftovers: %v\n", err)
		return 2
	}
	// Ctrl-C reaches the whole foreground group anyway; a TERM sent to us
	// alone is passed on so the command can clean up as it would.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	code := 0
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			fmt.Fprintf(stderr, "leftovers: %v\n", err)
			return 2
		}
		code = max(ee.ExitCode(), 1)
	}
	signal.Stop(sigs)

	left := waitForChildren(grace)
	if len(left) == 0 {
		fmt.Fprintf(stderr, "leftovers: no process started by %s outlived it\n", filepath.Base(args[0]))
		return code
	}
	fmt.Fprintf(stderr, "leftovers: %d process(es) started by %s were still running %v after it ended:\n", len(left), filepath.Base(args[0]), grace)
	for _, pid := range left {
		fmt.Fprintf(stderr, "  pid %d: %s\n", pid, cmdline(pid))
	}
	for _, pid := range left {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	waitForChildren(time.Second) // reap what was just killed
	return max(code, 1)
}

// waitForChildren reaps exited children and returns those still running
// once none is left or grace has passed.
func waitForChildren(grace time.Duration) []int {
	deadline := time.Now().Add(grace)
	for {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		if len(children(os.Getpid(), true)) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return children(os.Getpid(), false)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// children lists the processes whose parent is ppid, zombies (exited, not
// yet reaped) only if asked.
func children(ppid int, zombies bool) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 || (f[0] == "Z" && !zombies) {
			continue
		}
		if p, _ := strconv.Atoi(f[1]); p == ppid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cmdline is a process's command line, cut short.
func cmdline(pid int) string {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	s := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}
