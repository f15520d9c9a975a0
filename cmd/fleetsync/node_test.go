package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/seed"
	"github.com/fleetsync/fleetsync/partition"
	"github.com/fleetsync/fleetsync/web"
)

// Fleet test settings: short leases so takeovers happen within seconds, and small partitions and
// batches so that a 100k-document source has many partitions with many checkpoints each.
const (
	testLeaseTTL      = "5s"
	testPartitionSize = "256KB"
	testBatchDocs     = "200"
	testWorkers       = "2"
	// fleetDeadline bounds a whole copy on a slow, shared machine; it is a hang guard, not a measure.
	fleetDeadline = 4 * time.Minute
)

// fleetNode is one fleetsync node process.
type fleetNode struct {
	name string
	api  string // http://host:port
	*background
}

// freePort returns a TCP port that was free a moment ago on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startNode starts a node of the fleet syncing c, and waits until it has joined.
func startNode(t *testing.T, c sandboxtest.Clusters, name string, extra ...string) *fleetNode {
	t.Helper()
	return startNodeEnv(t, c, name, nil, extra...)
}

// startNodeEnv is startNode with more environment variables for the node (a failpoint).
func startNodeEnv(t *testing.T, c sandboxtest.Clusters, name string, env []string, extra ...string) *fleetNode {
	t.Helper()
	port := freePort(t)
	args := append([]string{"--cluster0", c.Source, "--cluster1", c.Destination, "--name", name,
		"--port", strconv.Itoa(port), "--lease-ttl", testLeaseTTL, "--partition-size", testPartitionSize,
		"--batch-docs", testBatchDocs, "--workers", testWorkers, "--server-selection-timeout", "2s", "--sandbox"}, extra...)
	b := startBackgroundEnv(t, env, args...)
	line := b.readLine(t)
	if !strings.HasPrefix(line, "fleetsync node "+name+" ready: API http://127.0.0.1:"+strconv.Itoa(port)) {
		t.Fatalf("node %s printed %q, want its ready line; stderr: %s", name, line, b.stderr.String())
	}
	return &fleetNode{name: name, api: "http://127.0.0.1:" + strconv.Itoa(port), background: b}
}

// kill sends SIGKILL and waits for the process to be gone.
func (n *fleetNode) kill(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-n.done
}

type apiReply struct {
	status int
	body   map[string]any
	raw    string
}

func call(t *testing.T, method, url, body string) apiReply {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := apiReply{status: resp.StatusCode, raw: string(raw)}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s answered %d with a body that is not a JSON object: %q", method, url, resp.StatusCode, raw)
	}
	return r
}

// progress reads a node's /progress.
func progress(t *testing.T, n *fleetNode) web.Progress {
	t.Helper()
	resp, err := http.Get(n.api + "/api/v1/progress")
	if err != nil {
		t.Fatalf("GET progress from %s: %v", n.name, err)
	}
	defer resp.Body.Close()
	var body struct {
		Success  bool         `json:"success"`
		Progress web.Progress `json:"progress"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || !body.Success {
		t.Fatalf("progress from %s: %d, %v, %+v", n.name, resp.StatusCode, err, body)
	}
	return body.Progress
}

func startSync(t *testing.T, n *fleetNode) {
	t.Helper()
	r := call(t, http.MethodPost, n.api+"/api/v1/start", `{"source":"cluster0","destination":"cluster1"}`)
	if r.status != http.StatusOK || r.body["success"] != true {
		t.Fatalf("start: %d %s", r.status, r.raw)
	}
}

// waitFor polls cond until it holds or the fleet deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(fleetDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", fleetDeadline, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCopied waits until the sync's copy phase (data and indexes) is complete, as n reports it.
func waitCopied(t *testing.T, n *fleetNode) web.Progress {
	t.Helper()
	var p web.Progress
	waitFor(t, "the copy to complete", func() bool {
		p = progress(t, n)
		return p.Fleet.Phase == metadata.PhaseApply
	})
	return p
}

// seedSource fills the source with docs documents in 6 collections (one with mixed _id types).
func seedSource(t *testing.T, c sandboxtest.Clusters, docs int) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fleetDeadline)
	defer cancel()
	stats, err := seed.Seed(ctx, sandboxtest.Connect(t, c.Source), seed.Options{Docs: docs, Collections: 6, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	return int64(stats.Docs)
}

func partitions(t *testing.T, dst *mongo.Client) []partition.Partition {
	t.Helper()
	all, err := partition.NewStore(dst.Database(namespace.DefaultMetadataDB).Collection(metadata.CollPartitions), "default").All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// ownedBy reports whether a lease owner ("<node>/<incarnation>/w<i>") belongs to node.
func ownedBy(owner, node string) bool { return strings.HasPrefix(owner, node+"/") }

// assertVerified runs fleetsync verify and requires exit 0 with EQUAL.
func assertVerified(t *testing.T, c sandboxtest.Clusters) string {
	t.Helper()
	r := runFleetsync(t, "verify", "--cluster0", c.Source, "--cluster1", c.Destination)
	if r.code != exitOK || !strings.Contains(r.stdout, "EQUAL") {
		t.Fatalf("verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// assertEveryDocumentCheckpointedOnce checks the copy accounting: the partitions' checkpointed
// counts add up to exactly the source's documents, so no document was counted twice (a takeover
// that restarted a partition from its start would count its first batches again) and none was
// skipped; and every claim after the first started after the checkpoint its predecessor left.
func assertEveryDocumentCheckpointedOnce(t *testing.T, parts []partition.Partition, sourceDocs int64) (takenOver int) {
	t.Helper()
	var total int64
	for _, p := range parts {
		if !p.Done {
			t.Errorf("partition %s is not done", p.ID)
		}
		total += p.DocsCopied
		for i := 1; i < len(p.Claims); i++ {
			prev, cur := p.Claims[i-1], p.Claims[i]
			if cur.Epoch <= prev.Epoch {
				t.Errorf("partition %s: claim %d has epoch %d after epoch %d", p.ID, i, cur.Epoch, prev.Epoch)
			}
			if cur.DocsCopiedBefore > 0 && cur.ResumedAfter.Type == 0 {
				t.Errorf("partition %s: claim by %s found %d documents checkpointed but started from the beginning",
					p.ID, cur.Owner, cur.DocsCopiedBefore)
			}
			if cur.DocsCopiedBefore > 0 {
				takenOver++
			}
		}
	}
	if total != sourceDocs {
		t.Errorf("partitions checkpointed %d documents in all, want exactly the source's %d", total, sourceDocs)
	}
	return takenOver
}

// The first scenario: a 3-node fleet copies 100k documents; one node is SIGKILLed while it
// holds half-copied partitions; the others take them over after their checkpoints and finish.
func TestFleetFinishesTheCopyOfANodeKilledMidCopy(t *testing.T) {
	t.Parallel()
	c := sandboxtest.Pair(t)
	sourceDocs := seedSource(t, c, 100_000)
	dst := sandboxtest.Connect(t, c.Destination)

	a, b, cc := startNode(t, c, "a"), startNode(t, c, "b"), startNode(t, c, "c")
	if p := progress(t, a); p.State != metadata.StateIdle || p.Info != "waiting for start" {
		t.Fatalf("before start: state %s, info %q; want IDLE, waiting for start", p.State, p.Info)
	}
	startSync(t, b) // any node may be asked
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("a: %s", a.stderr.String())
		}
	})

	// Kill b while it holds a partition with a checkpoint that is not finished. Partitions are small,
	// so b may finish the one seen between the look and the kill: b is frozen first (SIGSTOP), its
	// state read again once a write it had in flight has landed, and killed only if it still holds
	// such a partition; else it runs on and the test looks again.
	orphans := map[string]partition.Partition{}
	waitFor(t, "node b to hold a checkpointed, unfinished partition", func() bool {
		held := func() bool {
			for _, p := range partitions(t, dst) {
				if ownedBy(p.Owner, "b") && !p.Done && p.DocsCopied > 0 {
					return true
				}
			}
			return false
		}
		if !held() {
			return false
		}
		if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // a write b had in flight lands
		if !held() {
			if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			return false
		}
		for _, p := range partitions(t, dst) {
			if ownedBy(p.Owner, "b") && !p.Done {
				orphans[p.ID] = p
			}
		}
		return true
	})
	b.kill(t)

	final := waitCopied(t, a)
	parts := partitions(t, dst)
	takenOver := assertEveryDocumentCheckpointedOnce(t, parts, sourceDocs)
	for _, p := range parts {
		o, ok := orphans[p.ID]
		if !ok {
			continue
		}
		last := p.Claims[len(o.Claims)] // the claim right after b's
		if ownedBy(last.Owner, "b") || last.DocsCopiedBefore != o.DocsCopied || bsonorderCompare(last.ResumedAfter, o.LastID) != 0 {
			t.Errorf("partition %s: b left it at %d documents after %s; the next claim (%s) started at %d after %s",
				p.ID, o.DocsCopied, o.LastID, last.Owner, last.DocsCopiedBefore, last.ResumedAfter)
		}
	}
	if takenOver == 0 {
		t.Error("no partition was resumed from a checkpoint")
	}
	t.Logf("%d partitions, %d orphaned by b, %d resumed after a checkpoint", len(parts), len(orphans), takenOver)

	if final.Fleet.Partitions.Done != len(parts) || final.Fleet.DocumentsCopied != sourceDocs {
		t.Errorf("final progress: %+v, want %d partitions done and %d documents", final.Fleet, len(parts), sourceDocs)
	}
	if final.CollectionCopy.EstimatedCopiedBytes < final.CollectionCopy.EstimatedTotalBytes*9/10 {
		t.Errorf("collectionCopy %+v: copied bytes should reach the estimate", final.CollectionCopy)
	}
	waitFor(t, "gossip to see b gone", func() bool {
		p := progress(t, cc)
		return p.Fleet.NodesAlive == 2
	})
	out := assertVerified(t, c)
	if !strings.Contains(out, "restored at commit") && !strings.Contains(out, "commit restores them") {
		t.Errorf("verify does not mention the unique index settings left out until commit:\n%s", out)
	}
}

// bsonorderCompare compares two optional _id values (absent sorts first).
func bsonorderCompare(a, b bson.RawValue) int {
	switch {
	case a.Type == 0 && b.Type == 0:
		return 0
	case a.Type == 0:
		return -1
	case b.Type == 0:
		return 1
	}
	return bytes.Compare(append([]byte{byte(a.Type)}, a.Value...), append([]byte{byte(b.Type)}, b.Value...))
}

// The second scenario: every node is killed mid-copy, two new nodes with other names start
// later, and they finish from the state stored on the destination.
func TestNewFleetFinishesACopyAfterTheWholeFleetWasKilled(t *testing.T) {
	t.Parallel()
	c := sandboxtest.Pair(t)
	sourceDocs := seedSource(t, c, 100_000)
	dst := sandboxtest.Connect(t, c.Destination)

	old := []*fleetNode{startNode(t, c, "old1"), startNode(t, c, "old2"), startNode(t, c, "old3")}
	startSync(t, old[0])
	var doneBefore, total int
	waitFor(t, "a fifth of the partitions to be copied", func() bool {
		parts := partitions(t, dst)
		doneBefore, total = 0, len(parts)
		for _, p := range parts {
			if p.Done {
				doneBefore++
			}
		}
		return total > 0 && doneBefore*5 >= total
	})
	var wg sync.WaitGroup
	for _, n := range old {
		wg.Add(1)
		go func() { defer wg.Done(); n.kill(t) }()
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond)
	stateAtKill := map[string]partition.Partition{}
	doneAtKill := 0
	for _, p := range partitions(t, dst) {
		stateAtKill[p.ID] = p
		if p.Done {
			doneAtKill++
		}
	}
	if doneAtKill == len(stateAtKill) {
		t.Fatal("the copy finished before the fleet was killed; the test proves nothing")
	}

	fresh := []*fleetNode{startNode(t, c, "new1"), startNode(t, c, "new2")}
	final := waitCopied(t, fresh[1])
	parts := partitions(t, dst)
	assertEveryDocumentCheckpointedOnce(t, parts, sourceDocs)
	for _, p := range parts {
		before := stateAtKill[p.ID]
		if before.Done {
			if len(p.Claims) != len(before.Claims) {
				t.Errorf("partition %s was done before the kill but was claimed again", p.ID)
			}
			continue
		}
		if len(p.Claims) <= len(before.Claims) {
			t.Errorf("partition %s was unfinished at the kill but no new node claimed it", p.ID)
			continue
		}
		next := p.Claims[len(before.Claims)]
		if !ownedBy(next.Owner, "new1") && !ownedBy(next.Owner, "new2") {
			t.Errorf("partition %s: claimed after the kill by %s, not a new node", p.ID, next.Owner)
		}
		if next.DocsCopiedBefore != before.DocsCopied {
			t.Errorf("partition %s: the new node started at %d documents, the old fleet had checkpointed %d", p.ID, next.DocsCopiedBefore, before.DocsCopied)
		}
	}
	if final.CoordinatorID != "new1" && final.CoordinatorID != "new2" {
		t.Errorf("coordinator after the restart is %q, want a new node", final.CoordinatorID)
	}
	t.Logf("%d of %d partitions were done when the fleet was killed", doneAtKill, len(parts))
	assertVerified(t, c)
}

// SIGTERM stops a node gracefully mid-copy: it exits 0 after handing back its partitions (no
// partition keeps its lease) with their checkpoints, and another node finishes them.
func TestSigtermHandsBackPartitions(t *testing.T) {
	t.Parallel()
	c := sandboxtest.Pair(t)
	sourceDocs := seedSource(t, c, 30_000)
	dst := sandboxtest.Connect(t, c.Destination)

	a := startNode(t, c, "a", "--workers", "1")
	startSync(t, a)
	waitFor(t, "a checkpoint", func() bool {
		for _, p := range partitions(t, dst) {
			if p.DocsCopied > 0 && !p.Done {
				return true
			}
		}
		return false
	})
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-a.done
	if code := a.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("after SIGTERM: exit %d; stderr: %s", code, a.stderr.String())
	}
	for _, p := range partitions(t, dst) {
		if p.Owner != "" {
			t.Errorf("partition %s still leased by %s after its node stopped", p.ID, p.Owner)
		}
	}
	var s metadata.Sync
	if err := dst.Database(namespace.DefaultMetadataDB).Collection(metadata.CollSyncs).FindOne(context.Background(), bson.D{{Key: "_id", Value: "default"}}).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.Owner != "" {
		t.Errorf("coordinator lease still held by %s after its node stopped", s.Owner)
	}

	b := startNode(t, c, "b")
	waitCopied(t, b)
	assertEveryDocumentCheckpointedOnce(t, partitions(t, dst), sourceDocs)
	assertVerified(t, c)
}

// The API answers mongosync's shapes, refuses bad calls with a sentence, and changes nothing then.
func TestStartAPIRefusesBadCalls(t *testing.T) {
	t.Parallel()
	c := sandboxtest.Pair(t)
	seedSource(t, c, 500)
	n := startNode(t, c, "solo")
	start := n.api + "/api/v1/start"
	for _, tc := range []struct {
		name, method, url, body string
		status                  int
		code, says              string
	}{
		{"not JSON", "POST", start, `{source:`, 400, "InvalidRequest", "must be a JSON object"},
		{"missing destination", "POST", start, `{"source":"cluster0"}`, 400, "InvalidRequest", `"destination" are required`},
		{"unsupported parameter", "POST", start, `{"source":"cluster0","destination":"cluster1","namespaceRemap":[]}`, 400, "InvalidRequest", `parameter "namespaceRemap" is not supported`},
		{"reversed clusters", "POST", start, `{"source":"cluster1","destination":"cluster0"}`, 400, "InvalidRequest", "must be \"cluster0\" and \"cluster1\""},
		{"wrong method", "GET", start, ``, 405, "MethodNotAllowed", "GET /api/v1/start"},
		{"unknown endpoint", "POST", n.api + "/api/v1/frobnicate", `{}`, 404, "NotFound", "/api/v1/frobnicate"},
	} {
		r := call(t, tc.method, tc.url, tc.body)
		desc, _ := r.body["errorDescription"].(string)
		if r.status != tc.status || r.body["success"] != false || r.body["error"] != tc.code || !strings.Contains(desc, tc.says) {
			t.Errorf("%s: got %d %s; want %d, error %s, description saying %q", tc.name, r.status, r.raw, tc.status, tc.code, tc.says)
		}
		if p := progress(t, n); p.State != metadata.StateIdle {
			t.Fatalf("%s changed the state to %s", tc.name, p.State)
		}
	}
	startSync(t, n)
	r := call(t, "POST", start, `{"source":"cluster0","destination":"cluster1"}`)
	if r.status != 409 || r.body["error"] != "InvalidStateTransition" || !strings.Contains(fmt.Sprint(r.body["errorDescription"]), "RUNNING") {
		t.Errorf("second start: %d %s", r.status, r.raw)
	}
	p := waitCopied(t, n)
	fleet := call(t, "GET", n.api+"/api/v1/fleet", "")
	if f, ok := fleet.body["fleet"].(map[string]any); fleet.status != 200 || !ok || f["phase"] != metadata.PhaseApply || f["coordinator"] == nil {
		t.Errorf("GET /api/v1/fleet: %d %s", fleet.status, fleet.raw)
	}
	if p.State != metadata.StateRunning || p.CanWrite || p.MongosyncID != "solo" || p.CoordinatorID != "solo" ||
		p.Fleet.NodesAlive != 1 || p.Fleet.StartAtOperationTime == nil || !strings.HasPrefix(p.DirectionMapping.Source, "cluster0: 127.0.0.1:") {
		t.Errorf("progress after the copy: %+v", p)
	}
}

// A node started for an existing sync with another source refuses at once, in one line.
func TestNodeRefusesAnotherSourceForTheSameID(t *testing.T) {
	t.Parallel()
	c := sandboxtest.Pair(t)
	n := startNode(t, c, "first")
	other := sandboxtest.Server(t, true)
	r := runFleetsync(t, "--cluster0", other, "--cluster1", c.Destination, "--name", "second", "--port", "0")
	assertOneLineError(t, r, "node", "was created for the source")
	if !strings.Contains(r.stderr, "pick another --id") {
		t.Errorf("the refusal does not say what to do: %s", r.stderr)
	}
	_ = n
}

// A node whose destination is down at start keeps retrying with growing waits, and joins when the
// destination comes up; it neither crashes nor spins.
func TestNodeWaitsForAnUnreachableDestination(t *testing.T) {
	t.Parallel()
	source := sandboxtest.Server(t, true)
	port := freePort(t)
	dest := fmt.Sprintf("mongodb://127.0.0.1:%d/", port)
	apiPort := freePort(t)
	api := "http://127.0.0.1:" + strconv.Itoa(apiPort)
	b := startBackground(t, "--cluster0", source, "--cluster1", dest, "--name", "patient", "--port", strconv.Itoa(apiPort),
		"--server-selection-timeout", "300ms", "--sandbox")
	waitFor(t, "two retry messages", func() bool {
		return strings.Count(b.stderr.String(), "retrying in") >= 2
	})
	// Meanwhile its API says so, as mongosync's does, and asks callers to come back.
	if p := progress(t, &fleetNode{name: "patient", api: api}); p.State != metadata.StateInitializing {
		t.Fatalf("progress while connecting: state %s", p.State)
	}
	if r := call(t, http.MethodPost, api+"/api/v1/start", `{"source":"cluster0","destination":"cluster1"}`); r.status != http.StatusServiceUnavailable || r.body["error"] != "NotReady" {
		t.Fatalf("start while connecting: %d %s", r.status, r.raw)
	}
	log := b.stderr.String()
	if !strings.Contains(log, "cluster1: cannot reach "+dest) || !strings.Contains(log, "retrying in 1s") || !strings.Contains(log, "retrying in 2s") {
		t.Fatalf("retry log does not name the destination and a growing wait:\n%s", log)
	}
	srv, err := sandboxtest.Launcher(t).StartServer(port, false)
	if err != nil {
		t.Fatalf("starting the destination on port %d: %v", port, err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	if line := b.readLine(t); !strings.HasPrefix(line, "fleetsync node patient ready: API "+api) {
		t.Fatalf("after the destination came up: %q", line)
	}
	if p := progress(t, &fleetNode{name: "patient", api: api}); p.State != metadata.StateIdle {
		t.Fatalf("progress once connected: state %s", p.State)
	}
}

func TestNodeBadFlagsAreOneLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--cluster0", "mongodb://a:1/"}, "--cluster0 and --cluster1 are required"},
		{[]string{"--cluster0", "mongodb://a:1/", "--cluster1", "mongodb://b:1/", "--workers", "0"}, "at least one copy worker"},
		{[]string{"--cluster0", "mongodb://a:1/", "--cluster1", "mongodb://b:1/", "--partition-size", "12XB"}, "write it like 64MB"},
		{[]string{"--cluster0", "mongodb://a:1/", "--cluster1", "mongodb://b:1/", "--name", "a/b"}, "--name \"a/b\" must be non-empty, without '/'"},
		{[]string{"--cluster0", "mongodb://a:1/", "--cluster1", "mongodb://b:1/", "--lease-ttl", "100ms"}, "--lease-ttl 100ms is too short"},
		{[]string{"--cluster0", "mongodb://user:s3cret@a:notaport/", "--cluster1", "mongodb://b:1/"}, "cluster0"},
		{[]string{"--cluster0", "mongodb://a:1/", "--cluster1", "mongodb://b:1/", "--verbosity", "loud"}, "--verbosity \"loud\""},
		{[]string{"--cluster0", "mongodb://a:1/", "--cluster1", "mongodb://b:1/", "--change-source", "tail"}, "--change-source \"tail\": use auto, changeStream or oplog"},
		{[]string{"--cluster0", "mongodb://a:1/", "--cluster1", "mongodb://b:1/", "--apply-lanes", "0"}, "--apply-lanes 0: use 1 to 256"},
	} {
		r := runFleetsync(t, tc.args...)
		assertOneLineError(t, r, "node", tc.says)
		if strings.Contains(r.stderr, "s3cret") {
			t.Errorf("the password leaked: %s", r.stderr)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"64MB": 64 << 20, "512KB": 512 << 10, "1GiB": 1 << 30, "1.5MB": 3 << 19, "4096": 4096, " 2 mb ": 2 << 20} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MB", "-1MB", "0", "ten MB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}
