package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetsync/fleetsync/web"
)

func ptr[T any](v T) *T { return &v }

// Hand-built reports of a sync at each point a user watches it.
var (
	idleProgress = web.Progress{
		State: "IDLE", Info: "waiting for start",
		Fleet: web.Fleet{SyncID: "default", Node: "node-a", NodesAlive: 1,
			Nodes: []web.Node{{Name: "node-a", Alive: true, Registered: true, API: "127.0.0.1:27182"}}},
	}
	copyProgress = web.Progress{
		State: "RUNNING", Info: "collection copy",
		CollectionCopy: web.CollectionCopy{EstimatedTotalBytes: 200_000_000, EstimatedCopiedBytes: 104_200_000},
		Fleet: web.Fleet{
			SyncID: "default", Phase: "copy", Node: "node-a",
			Coordinator: &web.LeaseHolder{Node: "node-a", Epoch: 2},
			NodesAlive:  2,
			Nodes: []web.Node{
				{Name: "node-a", Alive: true, Registered: true, API: "127.0.0.1:27182"},
				{Name: "node-bb", Alive: true, Registered: true, API: "127.0.0.1:27183"},
				{Name: "node-c", Alive: false, Registered: false},
			},
			Partitions:      web.PartitionCount{Total: 15, Done: 12, Active: 3},
			DocumentsCopied: 98_112, EstimatedTotalDocs: 190_000,
		},
	}
	applyProgress = web.Progress{
		State: "RUNNING", Info: "change event application", CanCommit: true,
		LagTimeSeconds: ptr[int64](3), TotalEventsApplied: ptr[int64](12_345), EstimatedSecondsToCEACatchup: ptr[int64](2),
		CollectionCopy: web.CollectionCopy{EstimatedTotalBytes: 200_000_000, EstimatedCopiedBytes: 198_300_000},
		Fleet: web.Fleet{
			SyncID: "default", Phase: "apply", Node: "node-a",
			Coordinator: &web.LeaseHolder{Node: "node-a", Epoch: 2},
			NodesAlive:  1, Nodes: []web.Node{{Name: "node-a", Alive: true, API: "127.0.0.1:27182"}},
			Partitions:      web.PartitionCount{Total: 15, Done: 15},
			DocumentsCopied: 190_000, EstimatedTotalDocs: 190_000,
			Applier: &web.Applier{Node: "node-a", Epoch: 4, Source: "changeStream",
				AppliedThrough: &web.OpTime{T: 1_700_000_000, I: 5}, EventsApplied: 12_345},
		},
	}
)

// assertLine fails unless want is one of the report's lines, exactly.
func assertLine(t *testing.T, report, want string) {
	t.Helper()
	for _, line := range strings.Split(report, "\n") {
		if line == want {
			return
		}
	}
	t.Fatalf("no line %q in the report:\n%s", want, report)
}

func assertNoLineWith(t *testing.T, report, prefix string) {
	t.Helper()
	for _, line := range strings.Split(report, "\n") {
		if strings.HasPrefix(line, prefix) {
			t.Fatalf("unexpected line %q in the report:\n%s", line, report)
		}
	}
}

func TestStatusFormatIdle(t *testing.T) {
	r := formatStatus(idleProgress)
	if !strings.HasPrefix(r, "state: IDLE   phase: none (waiting for start)\n") {
		t.Fatalf("first line of an IDLE report:\n%s", r)
	}
	assertLine(t, r, "copy:  not started")
	assertLine(t, r, "partitions: none")
	assertLine(t, r, "canCommit: false   canWrite: false")
	assertLine(t, r, "coordinator: none")
	assertLine(t, r, "nodes: 1 of 1 alive")
	assertLine(t, r, "  node-a  alive  127.0.0.1:27182")
	assertNoLineWith(t, r, "lag:")
	assertNoLineWith(t, r, "applier:")
	assertNoLineWith(t, r, "warning:")
	assertNoLineWith(t, r, "error:")
	if strings.Contains(r, "\x1b") {
		t.Fatalf("escape codes in the report: %q", r)
	}
}

func TestStatusFormatCopyInProgress(t *testing.T) {
	r := formatStatus(copyProgress)
	assertLine(t, r, "state: RUNNING   phase: copy (collection copy)")
	assertLine(t, r, "copy:  [##########..........]  52%  104.2 MB of 200.0 MB, 98,112 of 190,000 documents")
	assertLine(t, r, "partitions: 12 done, 3 active, 0 failed of 15")
	assertLine(t, r, "coordinator: node-a   epoch: 2")
	assertLine(t, r, "nodes: 2 of 3 alive")
	assertLine(t, r, "  node-a   alive  127.0.0.1:27182")
	assertLine(t, r, "  node-bb  alive  127.0.0.1:27183")
	assertLine(t, r, "  node-c   dead   no API")
	assertNoLineWith(t, r, "lag:")

	// The sections come in a fixed order, so a redraw does not move them.
	var order []string
	for _, line := range strings.Split(strings.TrimRight(r, "\n"), "\n") {
		if key, _, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
			order = append(order, key)
		}
	}
	if got := strings.Join(order, ","); got != "state,copy,partitions,canCommit,coordinator,nodes" {
		t.Fatalf("sections in order %s:\n%s", got, r)
	}
}

func TestStatusFormatCopyBar(t *testing.T) {
	for _, c := range []struct {
		copied, total int64
		want          string
	}{
		{0, 1000, "[....................]  0%"},
		{100, 200, "[##########..........]  50%"},
		{999, 1000, "[###################.]  99%"}, // full only when done
		{1000, 1000, "[####################]  100%"},
		{1500, 1000, "[####################]  100%"}, // the total is an estimate: clamped
		{-1, 1000, "[....................]  0%"},
	} {
		p := copyProgress
		p.CollectionCopy = web.CollectionCopy{EstimatedCopiedBytes: c.copied, EstimatedTotalBytes: c.total}
		line := strings.Split(formatStatus(p), "\n")[1]
		if !strings.HasPrefix(line, "copy:  "+c.want+"  ") {
			t.Errorf("%d of %d bytes: want %q in %q", c.copied, c.total, c.want, line)
		}
		_, rest, _ := strings.Cut(line, "[")
		bar, _, _ := strings.Cut(rest, "]")
		if len(bar) != statusBarWidth {
			t.Errorf("bar %q is not %d cells", bar, statusBarWidth)
		}
		if c.copied == 100 && (strings.Count(bar, "#") != 10 || strings.Count(bar, ".") != 10) {
			t.Errorf("a half-done copy is not 10 '#' of 20: %q", bar)
		}
	}
}

func TestStatusFormatZeroTotals(t *testing.T) {
	// Before the catalog has estimated the copy: not started.
	catalog := copyProgress
	catalog.Fleet.Phase, catalog.Fleet.Partitions = "catalog", web.PartitionCount{}
	catalog.CollectionCopy, catalog.Fleet.DocumentsCopied, catalog.Fleet.EstimatedTotalDocs = web.CollectionCopy{}, 0, 0
	r := formatStatus(catalog)
	assertLine(t, r, "copy:  not started")
	assertLine(t, r, "partitions: none")

	// After it, an empty source: nothing to copy, and no division by zero.
	empty := catalog
	empty.Fleet.Phase = "apply"
	r = formatStatus(empty)
	assertLine(t, r, "copy:  nothing to copy")

	// Bytes known but no document estimate: the documents copied alone.
	noDocs := copyProgress
	noDocs.Fleet.EstimatedTotalDocs = 0
	assertLine(t, formatStatus(noDocs), "copy:  [##########..........]  52%  104.2 MB of 200.0 MB, 98,112 documents")
}

func TestStatusFormatApplyWithLag(t *testing.T) {
	r := formatStatus(applyProgress)
	assertLine(t, r, "state: RUNNING   phase: apply (change event application)")
	// The copy is over even though it copied less than the estimate.
	assertLine(t, r, "copy:  [####################]  100%  done: 198.3 MB, 190,000 documents copied")
	assertLine(t, r, "lag: 3 s   events applied: 12,345   catch-up estimate: 2 s")
	assertLine(t, r, "canCommit: true   canWrite: false")
	assertLine(t, r, "applier: node-a   source: changeStream   epoch: 4   applied through: Timestamp(1700000000, 5) 2023-11-14T22:13:20Z")

	unknown := applyProgress
	unknown.EstimatedSecondsToCEACatchup, unknown.TotalEventsApplied = nil, nil
	assertLine(t, formatStatus(unknown), "lag: 3 s   events applied: unknown   catch-up estimate: unknown")
}

// A copy whose capture keeps the change events in the spool, then the same sync once the applier
// reads the source.
func TestStatusFormatSpool(t *testing.T) {
	p := copyProgress
	p.EstimatedOplogTimeRemaining = "4 hours"
	p.Fleet.Spool = &web.Spool{Capturer: &web.LeaseHolder{Node: "node-bb", Epoch: 3}, Captured: 12_000, Applied: 0, Waiting: 12_000,
		Bytes: 3_400_000, LagSeconds: 1.6, Error: "appending 500 change events to the spool: connection reset"}
	r := formatStatus(p)
	assertLine(t, r, "oplog time left: 4 hours")
	assertLine(t, r, "spool: 12,000 captured (3.4 MB), 0 applied, 12,000 waiting   capture lag: 2 s   capturer: node-bb   epoch: 3")
	assertLine(t, r, "error: capture: appending 500 change events to the spool: connection reset")
	if !strings.Contains(r, "canCommit: false   canWrite: false\noplog time left: 4 hours\nspool: ") {
		t.Fatalf("the oplog and spool lines are not after change event application:\n%s", r)
	}

	done := applyProgress
	done.Fleet.Spool = &web.Spool{Captured: 12_000, Applied: 12_000, Bytes: 3_400_000, Done: true}
	r = formatStatus(done)
	assertLine(t, r, "spool: 12,000 captured (3.4 MB), 12,000 applied, 0 waiting   capture done   capturer: none")
	assertNoLineWith(t, r, "oplog time left:")
	assertNoLineWith(t, formatStatus(copyProgress), "spool:")
}

func TestStatusFormatApplierError(t *testing.T) {
	p := applyProgress
	a := *p.Fleet.Applier
	a.Node, a.AppliedThrough, a.Error = "", nil, "reading the change stream: (ChangeStreamHistoryLost) resume point\nno longer in the oplog"
	p.Fleet.Applier = &a
	p.Fleet.Error = "building indexes: shop.orders: duplicate key"
	r := formatStatus(p)
	assertLine(t, r, "applier: none   source: changeStream   epoch: 4   applied through: nothing yet")
	assertLine(t, r, "error: building indexes: shop.orders: duplicate key")
	assertLine(t, r, "error: applier: reading the change stream: (ChangeStreamHistoryLost) resume point no longer in the oplog")
	if !strings.HasSuffix(r, "error: applier: reading the change stream: (ChangeStreamHistoryLost) resume point no longer in the oplog\n") {
		t.Fatalf("errors are not last:\n%s", r)
	}
}

func TestStatusFormatNoNodes(t *testing.T) {
	p := copyProgress
	p.Fleet.Nodes, p.Fleet.NodesAlive, p.Fleet.Coordinator = nil, 0, nil
	r := formatStatus(p)
	assertLine(t, r, "nodes: none")
	assertLine(t, r, "coordinator: none")
	assertNoLineWith(t, r, "  ")
}

func TestStatusFormatWarnings(t *testing.T) {
	p := copyProgress
	p.Fleet.Partitions.Failed = 1
	p.Warnings = []string{"shop.capped is capped and is copied as a normal collection", "1 partition(s) failed repeatedly and are no longer retried"}
	r := formatStatus(p)
	assertLine(t, r, "partitions: 12 done, 3 active, 1 failed of 15")
	if !strings.HasSuffix(r, "warning: shop.capped is capped and is copied as a normal collection\nwarning: 1 partition(s) failed repeatedly and are no longer retried\n") {
		t.Fatalf("warnings are not one a line at the end:\n%s", r)
	}
}

func TestStatusFormatNumbers(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 98112: "98,112", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 104_200_000: "104.2 MB", 999_960: "1.0 MB", 3_500_000_000_000: "3.5 TB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestStatusNormalizeAPI(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:27182":   "http://127.0.0.1:27182",
		"http://127.0.0.1:27182/":  "http://127.0.0.1:27182",
		"127.0.0.1:27182":          "http://127.0.0.1:27182",
		"node-b.internal:27182":    "http://node-b.internal:27182",
		" localhost:9000 ":         "http://localhost:9000",
		":27183":                   "http://127.0.0.1:27183",
		"https://sync.example.com": "https://sync.example.com",
		"[::1]:27182":              "http://[::1]:27182",
	} {
		got, err := normalizeAPI(in)
		if err != nil || got != want {
			t.Errorf("normalizeAPI(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ftp://host:21", "http://", "host:99999", "host:port", "http://host:1/?x=1"} {
		if got, err := normalizeAPI(in); err == nil {
			t.Errorf("normalizeAPI(%q) = %q, want an error", in, got)
		}
	}
}

// progressHandler is a node's API that answers /progress with the reports of next in turn, the last
// one again and again, and counts the calls.
func progressHandler(t *testing.T, next ...web.Progress) (http.Handler, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/progress" {
			http.NotFound(w, r)
			return
		}
		n := int(calls.Add(1)) - 1
		body, err := json.Marshal(struct {
			Success  bool         `json:"success"`
			Progress web.Progress `json:"progress"`
		}{true, next[min(n, len(next)-1)]})
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}), &calls
}

func progressServer(t *testing.T, next ...web.Progress) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	h, calls := progressHandler(t, next...)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, calls
}

// closedAddr is a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// runStatusHere runs the command in this process, for tests that need no signals.
func runStatusHere(args ...string) result {
	var out, errOut bytes.Buffer
	code := runStatus(args, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func TestStatusPrintsOneReport(t *testing.T) {
	srv, _ := progressServer(t, copyProgress)
	r := runFleetsync(t, "status", "--api", srv.URL)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r.stdout != formatStatus(copyProgress) {
		t.Fatalf("report:\n%s\nwant:\n%s", r.stdout, formatStatus(copyProgress))
	}

	// host:port without a scheme, and from the environment.
	t.Setenv(statusAPIEnv, strings.TrimPrefix(srv.URL, "http://"))
	if r := runStatusHere(); r.code != exitOK || !strings.Contains(r.stdout, "copy:  [##########..........]  52%") {
		t.Fatalf("with $%s: exit %d\nstdout: %s\nstderr: %s", statusAPIEnv, r.code, r.stdout, r.stderr)
	}
}

func TestStatusUnreachableIsOneLine(t *testing.T) {
	addr := closedAddr(t)
	r := runFleetsync(t, "status", "--api", addr)
	assertOneLineError(t, r, "status", "cannot reach the fleetsync API at http://"+addr+" (connection refused); start a node with --port, or pass --api")
}

func TestStatusAPIErrorIsOneLine(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"success":false,"error":"InternalError","errorDescription":"reading the sync document:\nserver selection timeout"}`))
	}))
	defer srv.Close()
	assertOneLineError(t, runStatusHere("--api", srv.URL), "status",
		"the fleetsync API at "+srv.URL+" answered InternalError: reading the sync document: server selection timeout")

	notFleetsync := httptest.NewServer(http.NotFoundHandler())
	defer notFleetsync.Close()
	assertOneLineError(t, runStatusHere("--api", notFleetsync.URL), "status", "did not answer like a fleetsync API")
}

func TestStatusBadFlagsAreOneLine(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--interval", "0s"}, "--interval must be above 0"},
		{[]string{"--interval", "-1s", "--watch"}, "--interval must be above 0"},
		{[]string{"--interval", "soon"}, "invalid value"},
		{[]string{"--api", "ftp://host"}, "--api: "},
		{[]string{"--api", "host:99999"}, "port 99999"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--frobnicate"}, "flag provided but not defined"},
	} {
		assertOneLineError(t, runFleetsync(t, append([]string{"status"}, c.args...)...), "status", c.want)
	}
	t.Setenv(statusAPIEnv, "ftp://host")
	assertOneLineError(t, runStatusHere(), "status", "$"+statusAPIEnv+": ")
}

func TestStatusWatchStopsWhenCommitted(t *testing.T) {
	committed := applyProgress
	committed.State, committed.CanWrite = "COMMITTED", true
	srv, calls := progressServer(t, copyProgress, applyProgress, committed)
	r := runFleetsync(t, "status", "--api", srv.URL, "--watch", "--interval", "10ms")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	want := formatStatus(copyProgress) + "\n" + formatStatus(applyProgress) + "\n" + formatStatus(committed)
	if r.stdout != want {
		t.Fatalf("not three reports separated by blank lines, the last COMMITTED:\n%s", r.stdout)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d calls after COMMITTED, want 3", n)
	}
}

func TestStatusWatchKeepsTryingWhileUnreachable(t *testing.T) {
	addr := closedAddr(t)
	var out bytes.Buffer
	errOut := &lockedBuffer{}
	done := make(chan int, 1)
	go func() { done <- runStatus([]string{"--api", addr, "--watch", "--interval", "20ms"}, &out, errOut) }()

	deadline := time.Now().Add(commandDeadline)
	for strings.Count(errOut.String(), "\n") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no retries within %s; stderr: %s", commandDeadline, errOut.String())
		}
		select {
		case code := <-done:
			t.Fatalf("watch gave up with exit %d while the node was down; stderr: %s", code, errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	for _, line := range strings.Split(strings.TrimRight(errOut.String(), "\n"), "\n") {
		if line != "fleetsync status: cannot reach the fleetsync API at http://"+addr+" (connection refused); start a node with --port, or pass --api; retrying every 20ms" {
			t.Fatalf("unexpected line while unreachable: %q", line)
		}
	}

	// The node comes up on that address: the watch shows it and stops at COMMITTED.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("SKIPPED: port %s, free a moment ago, was taken by another process before the fake node could listen on it (%v); the test runs whenever the port stays free, so run it again", addr, err)
	}
	committed := applyProgress
	committed.State = "COMMITTED"
	h, _ := progressHandler(t, committed)
	node := &http.Server{Handler: h}
	go func() { _ = node.Serve(ln) }()
	defer node.Shutdown(context.Background())
	select {
	case code := <-done:
		// Nothing on stdout while the node was down: the retries are on stderr, without blank lines.
		if code != exitOK || out.String() != formatStatus(committed) {
			t.Fatalf("exit %d\nstdout: %q", code, out.String())
		}
	case <-time.After(commandDeadline):
		t.Fatalf("watch did not stop at COMMITTED; stdout: %s", out.String())
	}
}

func TestStatusWatchStopsOnSIGINT(t *testing.T) {
	srv, _ := progressServer(t, copyProgress)
	b := startBackground(t, "status", "--api", srv.URL, "--watch", "--interval", "50ms")
	if line := b.readLine(t); line != "state: RUNNING   phase: copy (collection copy)" {
		t.Fatalf("first line %q; stderr: %s", line, b.stderr.String())
	}
	if err := b.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.done:
	case <-time.After(commandDeadline):
		t.Fatal("watch did not stop on SIGINT")
	}
	if code := b.cmd.ProcessState.ExitCode(); code != exitOK || b.stderr.String() != "" {
		t.Fatalf("exit %d after SIGINT; stderr: %s", code, b.stderr.String())
	}
}

// A committed sync's report shows the commit, what it restored, the verifier's result and the
// clusters' pings.
func TestFormatStatusCommitted(t *testing.T) {
	at := time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
	p := web.Progress{
		State: "COMMITTED", CanWrite: true, Info: "commit completed",
		DirectionMapping: web.DirectionMapping{Source: "cluster0: a:1", Destination: "cluster1: b:2"},
		Source:           web.Ping{PingLatencyMs: 3}, Destination: web.Ping{PingLatencyMs: -1},
		Verification: &web.Verification{Result: "passed",
			Source: web.VerificationSide{Phase: "passed", HashedDocumentCount: 12345, TotalCollectionCount: 6}},
		Fleet: web.Fleet{Phase: "apply", Commit: &web.Commit{Step: "finished", PauseSeconds: 0.734, Point: &web.OpTime{T: 1700000000, I: 5},
			Restored: []string{"shop.customers email_1: unique (rebuilt)"}, CommittedAt: &at}},
	}
	out := formatStatus(p)
	for _, want := range []string{
		"commit: finished, pause 0.73 s, commit point Timestamp(1700000000, 5)",
		"  restored shop.customers email_1: unique (rebuilt)",
		"verification: passed, 12,345 documents on each side, 6 collections",
		"source:      cluster0: a:1 (ping 3 ms)",
		"destination: cluster1: b:2 (ping unreachable)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
