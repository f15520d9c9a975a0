// Package sandbox runs MongoDB wire-protocol test servers (mongo-java-server, in memory) for
// fleetsync's sandbox command, demo, benchmarks and tests, since no mongod can be installed where
// fleetsync is developed.
//
// One JVM (the Launcher) hosts any number of servers, each started and stopped by a one-line command
// over the JVM's stdin. The JVM exits when that pipe closes, which happens when the Go process exits
// for any reason, SIGKILL included: no server outlives its owner.
package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// launcherStopTimeout is how long Close waits for the JVM to exit after its stdin closed before it
// kills it; shutting down in-memory servers takes milliseconds.
const launcherStopTimeout = 10 * time.Second

// stderrTailLines is how much of the JVM's stderr is kept to explain a failure.
const stderrTailLines = 20

// Options configure a Launcher.
type Options struct {
	CacheDir string           // default DefaultCacheDir()
	Progress func(msg string) // told about slow first-use steps; may be nil
	JavaArgs []string         // extra JVM flags, for example a larger -Xmx for big benchmarks
}

// Launcher is one running JVM that hosts sandbox servers. It is safe for concurrent use.
type Launcher struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *tailBuffer
	exited chan struct{}

	mu     sync.Mutex // one command and its reply at a time
	closed bool
}

// Start prepares the server jars (see Prepare) and starts the launcher JVM.
func Start(ctx context.Context, opts Options) (*Launcher, error) {
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir()
	}
	classpath, err := Prepare(ctx, opts.CacheDir, opts.Progress)
	if err != nil {
		return nil, err
	}
	args := []string{"-Dslf4j.internal.verbosity=ERROR", "-XX:+UseSerialGC", "-XX:-UsePerfData"}
	args = append(args, opts.JavaArgs...)
	args = append(args, "-cp", classpath, "SandboxLauncher")
	cmd := exec.Command("java", args...)
	// Own process group: a terminal's Ctrl-C reaches fleetsync, which stops the servers in order,
	// instead of killing the JVM under it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	l := &Launcher{cmd: cmd, stderr: &tailBuffer{max: stderrTailLines}, exited: make(chan struct{})}
	cmd.Stderr = l.stderr
	if l.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	l.stdout = bufio.NewReader(stdout)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the sandbox JVM: %w", err)
	}
	go func() {
		_ = cmd.Wait()
		close(l.exited)
	}()
	return l, nil
}

// Pid is the JVM's process id (tests use it to prove the JVM is gone).
func (l *Launcher) Pid() int { return l.cmd.Process.Pid }

// Server is one sandbox server inside a Launcher.
type Server struct {
	Port int
	l    *Launcher
}

// URI is the server's connection string.
func (s *Server) URI() string { return fmt.Sprintf("mongodb://127.0.0.1:%d/", s.Port) }

// StartServer starts an in-memory server on 127.0.0.1:port (0 picks a free port). With oplog the
// server keeps local.oplog.rs, as a replica-set source does. It accepts connections on return.
func (l *Launcher) StartServer(port int, oplog bool) (*Server, error) {
	reply, err := l.call(fmt.Sprintf("start %d %t", port, oplog))
	if err != nil {
		return nil, fmt.Errorf("starting a sandbox server on port %d: %w", port, err)
	}
	bound, err := strconv.Atoi(strings.TrimPrefix(reply, "ok "))
	if err != nil {
		return nil, fmt.Errorf("sandbox launcher answered %q to start", reply)
	}
	return &Server{Port: bound, l: l}, nil
}

// Stop shuts the server down and frees its port; its data is gone.
func (s *Server) Stop() error {
	_, err := s.l.call(fmt.Sprintf("stop %d", s.Port))
	return err
}

func (l *Launcher) call(command string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return "", errors.New("sandbox launcher is closed")
	}
	if _, err := io.WriteString(l.stdin, command+"\n"); err != nil {
		return "", l.deadErr(err)
	}
	reply, err := l.stdout.ReadString('\n')
	if err != nil {
		return "", l.deadErr(err)
	}
	reply = strings.TrimSpace(reply)
	if msg, isErr := strings.CutPrefix(reply, "err "); isErr {
		return "", errors.New(msg)
	}
	return reply, nil
}

func (l *Launcher) deadErr(err error) error {
	if tail := l.stderr.String(); tail != "" {
		return fmt.Errorf("sandbox JVM failed (%v): %s", err, tail)
	}
	return fmt.Errorf("sandbox JVM failed: %w", err)
}

// Close stops every server and the JVM, waiting for it to exit.
func (l *Launcher) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.exited
		return nil
	}
	l.closed = true
	l.stdin.Close() // end-of-file tells the launcher to shut down
	l.mu.Unlock()
	select {
	case <-l.exited:
		return nil
	case <-time.After(launcherStopTimeout):
		_ = syscall.Kill(-l.cmd.Process.Pid, syscall.SIGKILL)
		<-l.exited
		return fmt.Errorf("sandbox JVM did not stop within %s and was killed", launcherStopTimeout)
	}
}

// Wait returns when the JVM has exited, for callers that must notice it dying.
func (l *Launcher) Wait(ctx context.Context) error {
	select {
	case <-l.exited:
		return fmt.Errorf("sandbox JVM exited: %s", l.stderr.String())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tailBuffer keeps the last lines written to it.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	lines []string
	part  string
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	parts := strings.Split(t.part+string(p), "\n")
	t.part = parts[len(parts)-1]
	for _, line := range parts[:len(parts)-1] {
		if line = strings.TrimSpace(line); line != "" {
			t.lines = append(t.lines, line)
		}
	}
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(append(append([]string(nil), t.lines...), t.part), " | ")
}
