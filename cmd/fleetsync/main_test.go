package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// When this variable is set the test binary is fleetsync itself, so tests run the real command as a
// separate OS process without a separate build step.
const beFleetsync = "FLEETSYNC_TEST_BE_MAIN"

// commandDeadline guards against a command that hangs; it is a test failure, not a measurement.
const commandDeadline = 2 * time.Minute

func TestMain(m *testing.M) {
	if os.Getenv(beFleetsync) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// fleetsync prepares the command as a child process.
func fleetsync(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), beFleetsync+"=1")
	return cmd
}

type result struct {
	code           int
	stdout, stderr string
}

// runFleetsync runs the command to completion.
func runFleetsync(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandDeadline)
	defer cancel()
	cmd := fleetsync(ctx, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("fleetsync %s did not finish within %s", strings.Join(args, " "), commandDeadline)
	}
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errOut.String()}
}

// assertOneLineError checks the contract for bad input: exit 2, one line on stderr naming the
// command, no stack trace, nothing on stdout.
func assertOneLineError(t *testing.T, r result, command, want string) {
	t.Helper()
	if r.code != exitError {
		t.Fatalf("exit code %d, want %d; stderr: %s", r.code, exitError, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "fleetsync "+command+": ") {
		t.Fatalf("stderr is not one 'fleetsync %s: ...' line: %q", command, r.stderr)
	}
	if !strings.Contains(lines[0], want) {
		t.Fatalf("error %q does not say %q", lines[0], want)
	}
	for _, bad := range []string{"goroutine ", "panic", ".go:"} {
		if strings.Contains(r.stderr, bad) {
			t.Fatalf("error output looks like a stack trace: %q", r.stderr)
		}
	}
	if r.stdout != "" {
		t.Fatalf("stdout on error: %q", r.stdout)
	}
}

// background is a fleetsync process that runs until stopped; the test's cleanup kills it and the JVM
// it started, whatever happens to the test.
type background struct {
	cmd    *exec.Cmd
	stdout *bufio.Reader
	stderr *lockedBuffer
	done   chan struct{}
}

// lockedBuffer is stderr that a test may read while the process still writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startBackground(t *testing.T, args ...string) *background {
	t.Helper()
	return startBackgroundEnv(t, nil, args...)
}

// startBackgroundEnv is startBackground with more environment variables (KEY=value) for the process.
func startBackgroundEnv(t *testing.T, env []string, args ...string) *background {
	t.Helper()
	cmd := fleetsync(context.Background(), args...)
	cmd.Env = append(cmd.Env, env...)
	// An os.Pipe the test owns, not cmd.StdoutPipe: Wait (called as soon as the process exits)
	// closes a StdoutPipe, and with it whatever the process printed last and the test has not read
	// yet (a summary line printed just before exiting). This pipe's read end stays readable to EOF.
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdout.Close() })
	cmd.Stdout = w
	b := &background{cmd: cmd, stdout: bufio.NewReader(stdout), stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = b.stderr
	err = cmd.Start()
	w.Close() // the child has its own copy
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		jvms := childPids(cmd.Process.Pid)
		_ = cmd.Process.Kill()
		<-b.done
		for _, pid := range jvms {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return b
}

// readLine reads one stdout line, failing the test if none comes within the deadline.
func (b *background) readLine(t *testing.T) string {
	t.Helper()
	line := make(chan string, 1)
	go func() {
		s, _ := b.stdout.ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if s == "" {
			t.Fatalf("fleetsync exited before printing; stderr: %s", b.stderr.String())
		}
		return strings.TrimRight(s, "\n")
	case <-time.After(commandDeadline):
		t.Fatalf("no output within %s; stderr: %s", commandDeadline, b.stderr.String())
		return ""
	}
}

// childPids lists the processes whose parent is pid (the sandbox JVM of a fleetsync process).
func childPids(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the parenthesised command name: state, ppid, ...
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// waitGone waits until pid no longer exists (or is a zombie nobody has reaped yet).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(fields) > 0 && fields[0] == "Z" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("process %d is still running", pid)
}

func TestUnknownCommandIsOneLine(t *testing.T) {
	r := runFleetsync(t, "frobnicate")
	if r.code != exitError || !strings.Contains(r.stderr, `unknown command "frobnicate"`) || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("got %+v", r)
	}
}
