package sandbox_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/sandbox"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// A user's view of the sandbox: a source whose oplog records writes, a destination without one, and
// after Close neither port answers and no JVM remains.
func TestLauncherServesSourceAndDestinationAndStopsCleanly(t *testing.T) {
	ctx := context.Background()
	l, err := sandbox.Start(ctx, sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			l.Close()
		}
	})
	src, err := l.StartServer(0, true)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := l.StartServer(0, false)
	if err != nil {
		t.Fatal(err)
	}
	if src.Port == dst.Port || src.Port == 0 {
		t.Fatalf("ports: source %d, destination %d", src.Port, dst.Port)
	}

	source := sandboxtest.Connect(t, src.URI())
	if _, err := source.Database("app").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	n, err := source.Database("local").Collection("oplog.rs").CountDocuments(ctx, bson.D{{Key: "ns", Value: "app.c"}, {Key: "op", Value: "i"}})
	if err != nil || n != 1 {
		t.Fatalf("source oplog entries for the insert: %d, %v; want 1", n, err)
	}
	destination := sandboxtest.Connect(t, dst.URI())
	if _, err := destination.Database("app").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	n, _ = destination.Database("local").Collection("oplog.rs").CountDocuments(ctx, bson.D{})
	if n != 0 {
		t.Fatalf("destination has %d oplog entries; it should keep none", n)
	}

	pid := l.Pid()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	assertProcessGone(t, pid)
	for _, port := range []int{src.Port, dst.Port} {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d still accepts connections after Close", port)
		}
	}
}

func TestStopFreesThePortAndLauncherReportsErrors(t *testing.T) {
	l := sandboxtest.Launcher(t)
	srv, err := l.StartServer(0, false)
	if err != nil {
		t.Fatal(err)
	}
	// A second server on a taken port fails with the launcher's reason, not a hang.
	if _, err := l.StartServer(srv.Port, false); err == nil {
		t.Fatalf("starting a second server on port %d succeeded", srv.Port)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err == nil || !strings.Contains(err.Error(), "no server on port") {
		t.Fatalf("stopping twice: %v", err)
	}
	again, err := l.StartServer(srv.Port, false)
	if err != nil {
		t.Fatalf("port %d not reusable after Stop: %v", srv.Port, err)
	}
	again.Stop()
}

func TestMissingJavaIsOneClearError(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := sandbox.Start(context.Background(), sandbox.Options{CacheDir: t.TempDir()})
	var missing *sandbox.MissingToolError
	if err == nil || !errors.As(err, &missing) || missing.Tool != "java" {
		t.Fatalf("want a MissingToolError for java, got %v", err)
	}
	if !strings.Contains(err.Error(), "apt-get install") {
		t.Fatalf("error does not say how to install: %v", err)
	}
}

// The cache is built once and reused: a second Prepare does not call Maven (PATH without mvn works).
func TestPrepareReusesTheCache(t *testing.T) {
	cache := sandbox.DefaultCacheDir()
	if _, err := sandbox.Prepare(context.Background(), cache, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tool := range []string{"java", "javac"} {
		path, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(path, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
	if _, err := sandbox.Prepare(context.Background(), cache, nil); err != nil {
		t.Fatalf("second Prepare needed more than java and javac: %v", err)
	}
}

func assertProcessGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("JVM pid %d still running", pid)
}
