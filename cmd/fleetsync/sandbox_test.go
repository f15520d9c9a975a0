package main

import (
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

var uriLine = regexp.MustCompile(`^(source|destination): (mongodb://127\.0\.0\.1:(\d+)/)$`)

// startSandbox runs `fleetsync sandbox` and returns it with its two URIs and ports, read from the
// first two lines of its output.
func startSandboxCommand(t *testing.T, args ...string) (b *background, uris [2]string, ports [2]int) {
	t.Helper()
	b = startBackground(t, append([]string{"sandbox"}, args...)...)
	for i, role := range []string{"source", "destination"} {
		line := b.readLine(t)
		m := uriLine.FindStringSubmatch(line)
		if m == nil || m[1] != role {
			t.Fatalf("line %d is %q, want %q", i+1, line, role+": mongodb://127.0.0.1:PORT/")
		}
		uris[i] = m[2]
		ports[i], _ = strconv.Atoi(m[3])
	}
	return b, uris, ports
}

func TestSandboxServesSeededSourceAndEmptyDestinationThenStopsOnSIGTERM(t *testing.T) {
	b, uris, ports := startSandboxCommand(t, "--seed-docs", "300", "--seed-collections", "3", "--seed", "4")
	ctx := context.Background()

	source := sandboxtest.Connect(t, uris[0])
	var total int64
	dbs, err := source.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, db := range dbs {
		if db == "local" {
			continue
		}
		colls, _ := source.Database(db).ListCollectionNames(ctx, bson.D{})
		for _, c := range colls {
			n, err := source.Database(db).Collection(c).CountDocuments(ctx, bson.D{})
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
	}
	if total != 300 {
		t.Fatalf("source holds %d seeded documents, want 300", total)
	}
	// The source keeps an oplog (it plays a replica set); reading it is how changes are followed.
	if n, err := source.Database("local").Collection("oplog.rs").CountDocuments(ctx, bson.D{{Key: "op", Value: "i"}}); err != nil || n != 300 {
		t.Fatalf("source oplog has %d inserts (%v), want 300", n, err)
	}
	destination := sandboxtest.Connect(t, uris[1])
	if dbs, _ := destination.ListDatabaseNames(ctx, bson.D{}); len(dbs) != 0 {
		t.Fatalf("destination is not empty: %v", dbs)
	}

	jvms := childPids(b.cmd.Process.Pid)
	if len(jvms) != 1 {
		t.Fatalf("want one sandbox JVM under fleetsync, found %v", jvms)
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.done:
	case <-time.After(commandDeadline):
		t.Fatal("sandbox did not exit after SIGTERM")
	}
	if code := b.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; stderr: %s", code, b.stderr)
	}
	waitGone(t, jvms[0])
	assertPortsClosed(t, ports)
}

// A sandbox whose Go process is killed outright must not leave its JVM behind.
func TestSandboxJVMDiesWhenFleetsyncIsKilled(t *testing.T) {
	b, _, ports := startSandboxCommand(t)
	jvms := childPids(b.cmd.Process.Pid)
	if len(jvms) != 1 {
		t.Fatalf("want one sandbox JVM under fleetsync, found %v", jvms)
	}
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-b.done
	waitGone(t, jvms[0])
	assertPortsClosed(t, ports)
}

func TestSandboxRefusesABusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	r := runFleetsync(t, "sandbox", "--source-port", port)
	assertOneLineError(t, r, "sandbox", "port "+port+" is already in use")
}

func TestSandboxRejectsBadSeedFlags(t *testing.T) {
	assertOneLineError(t, runFleetsync(t, "sandbox", "--seed-docs", "-3"), "sandbox", "--seed-docs must be 0 or more")
	assertOneLineError(t, runFleetsync(t, "sandbox", "--seed-docs", "lots"), "sandbox", "invalid value")
}

func assertPortsClosed(t *testing.T, ports [2]int) {
	t.Helper()
	for _, port := range ports {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			t.Errorf("port %d still accepts connections", port)
		} else if !strings.Contains(err.Error(), "refused") {
			t.Logf("port %d: %v", port, err)
		}
	}
}
