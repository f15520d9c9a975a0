package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/web"
)

// lifecycleCall makes one of mongosync's POST calls with mongosync's empty body and requires success.
func lifecycleCall(t *testing.T, n *fleetNode, name string) {
	t.Helper()
	r := call(t, http.MethodPost, n.api+"/api/v1/"+name, "{ }")
	if r.status != http.StatusOK || r.body["success"] != true {
		t.Fatalf("%s: %d %s", name, r.status, r.raw)
	}
}

// waitState waits until n reports state.
func waitState(t *testing.T, n *fleetNode, state string) web.Progress {
	t.Helper()
	var p web.Progress
	waitFor(t, "state "+state, func() bool {
		p = progress(t, n)
		return p.State == state
	})
	return p
}

// waitNodeCanCommit waits until n reports canCommit.
func waitNodeCanCommit(t *testing.T, n *fleetNode) web.Progress {
	t.Helper()
	var p web.Progress
	waitFor(t, "canCommit", func() bool {
		p = progress(t, n)
		return p.CanCommit
	})
	return p
}

// commitAndWait calls /commit and waits for COMMITTED, failing at once if the commit fails.
func commitAndWait(t *testing.T, n *fleetNode) web.Progress {
	t.Helper()
	lifecycleCall(t, n, "commit")
	var p web.Progress
	waitFor(t, "COMMITTED", func() bool {
		p = progress(t, n)
		if p.Fleet.Commit != nil && p.Fleet.Commit.Failure != "" {
			t.Fatalf("the commit failed: %s", p.Fleet.Commit.Failure)
		}
		return p.State == metadata.StateCommitted
	})
	return p
}

// assertCommitted checks the progress of a finished commit: mongosync's fields, the restored index
// settings, and the verifier's pass.
func assertCommitted(t *testing.T, p web.Progress) {
	t.Helper()
	if !p.CanWrite || p.CanCommit || p.Info != "commit completed" {
		t.Errorf("after commit: canWrite %v canCommit %v info %q", p.CanWrite, p.CanCommit, p.Info)
	}
	c := p.Fleet.Commit
	if c == nil || c.Step != metadata.CommitStepFinished || c.CommittedAt == nil || c.PauseSeconds <= 0 || c.Point == nil {
		t.Fatalf("commit record %+v", c)
	}
	if p.Verification == nil || p.Verification.Result != metadata.VerificationPassed || p.Verification.Source.Phase != metadata.VerificationPassed ||
		p.Verification.Source.HashedDocumentCount == 0 || p.Verification.Source.HashedDocumentCount != p.Verification.Destination.HashedDocumentCount {
		t.Errorf("verification %+v", p.Verification)
	}
	t.Logf("commit pause %.2f s; restored %v", c.PauseSeconds, c.Restored)
}

// assertSeedIndexesRestored checks that the seed's unique and TTL index settings, built without them
// during the sync, are back on the destination, exactly as on the source.
func assertSeedIndexesRestored(t *testing.T, c sandboxtest.Clusters, restored []string) {
	t.Helper()
	ctx := context.Background()
	ns := namespace.Namespace{DB: "shop", Coll: "customers"}
	src, err := catalog.ListIndexes(ctx, sandboxtest.Connect(t, c.Source), ns)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := catalog.ListIndexes(ctx, sandboxtest.Connect(t, c.Destination), ns)
	if err != nil {
		t.Fatal(err)
	}
	settings := func(specs []bson.Raw) map[string]string {
		out := map[string]string{}
		for _, s := range specs {
			out[s.Lookup("name").StringValue()] = s.Lookup("unique").String() + " " + s.Lookup("expireAfterSeconds").String()
		}
		return out
	}
	want, got := settings(src), settings(dst)
	uniqueOrTTL := 0
	for name, w := range want {
		if got[name] != w {
			t.Errorf("index %s of %s: destination has %q, source %q", name, ns, got[name], w)
		}
		if strings.Contains(w, "true") || !strings.HasSuffix(w, " ") {
			uniqueOrTTL++
		}
	}
	if uniqueOrTTL == 0 || len(restored) < uniqueOrTTL {
		t.Errorf("the seed has %d unique/TTL index(es) on %s, and commit reports restoring %v", uniqueOrTTL, ns, restored)
	}
}

// stopLoadCommitAndVerify is the cut-over of a test under load: stop the writes, commit at once,
// and check the commit's record, the restored index settings and the clusters' equality.
func stopLoadCommitAndVerify(t *testing.T, load *loadProcess, n *fleetNode, c sandboxtest.Clusters) {
	t.Helper()
	t.Log(load.stop(t))
	p := commitAndWait(t, n)
	assertCommitted(t, p)
	assertSeedIndexesRestored(t, c, p.Fleet.Commit.Restored)
	assertVerified(t, c)
}

// TestMongosyncQuickstartCurlCommands runs the curl commands of mongosync's quickstart and API pages
// as written there, with only the port changed, against one node: start, progress, pause, resume,
// commit.
func TestMongosyncQuickstartCurlCommands(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed; this test runs mongosync's curl commands as they are written")
	}
	c := sandboxtest.Pair(t)
	seedSource(t, c, 3000)
	n := startNode(t, c, "quickstart")
	port := strings.TrimPrefix(n.api, "http://127.0.0.1:")
	curl := func(cmd string) map[string]any {
		t.Helper()
		cmd = strings.ReplaceAll(cmd, "27182", port)
		out, err := exec.Command("sh", "-c", cmd).Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		var body map[string]any
		if err := json.Unmarshal(out, &body); err != nil {
			t.Fatalf("%s printed %q, not JSON", cmd, out)
		}
		return body
	}
	// mongosync's start.sh, as the quickstart includes it.
	if got := curl(`curl localhost:27182/api/v1/start -XPOST \
--data '
   {
      "source": "cluster0",
      "destination": "cluster1"
   } '`); got["success"] != true {
		t.Fatalf("start: %v", got)
	}
	p := curl(`curl localhost:27182/api/v1/progress -XGET`)
	if p["success"] != true || p["progress"].(map[string]any)["state"] != metadata.StateRunning {
		t.Fatalf("progress: %v", p)
	}
	if got := curl(`curl localhost:27182/api/v1/pause -XPOST --data '{ }'`); got["success"] != true {
		t.Fatalf("pause: %v", got)
	}
	waitState(t, n, metadata.StatePaused)
	if got := curl(`curl localhost:27182/api/v1/resume -XPOST --data '{ }'`); got["success"] != true {
		t.Fatalf("resume: %v", got)
	}
	waitState(t, n, metadata.StateRunning)
	waitNodeCanCommit(t, n)
	if got := curl(`curl localhost:27182/api/v1/commit -XPOST --data '{ }'`); got["success"] != true {
		t.Fatalf("commit: %v", got)
	}
	assertCommitted(t, waitState(t, n, metadata.StateCommitted))
	// fleetsync status against the live node, once and in watch mode (which ends by itself at
	// COMMITTED).
	for _, args := range [][]string{{"status", "--api", n.api}, {"status", "--api", n.api, "--watch", "--interval", "100ms"}} {
		r := runFleetsync(t, args...)
		if r.code != exitOK || !strings.Contains(r.stdout, "state: COMMITTED") || !strings.Contains(r.stdout, "commit: finished, pause ") ||
			!strings.Contains(r.stdout, "verification: passed, 3,000 documents on each side") || !strings.Contains(r.stdout, "quickstart") {
			t.Fatalf("%v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	// And once COMMITTED, mongosync's reverse command is refused: this sync was not reversible.
	if got := curl(`curl localhost:27182/api/v1/reverse -XPOST --data '{ }'`); got["success"] != false || got["error"] != "ReverseNotAllowed" {
		t.Fatalf("reverse of a sync that is not reversible: %v", got)
	}
	assertVerified(t, c)
}

// TestPauseKillAllResumeCommit pauses a sync in the middle of its copy, kills every node with
// SIGKILL while the source keeps taking writes, starts a new fleet, checks that it stays paused,
// resumes, commits and verifies.
func TestPauseKillAllResumeCommit(t *testing.T) {
	t.Parallel()
	c := sandboxtest.Pair(t)
	seedSource(t, c, 20000)
	load := startLoad(t, c)
	first := []*fleetNode{startNode(t, c, "first-a"), startNode(t, c, "first-b")}
	startSync(t, first[0])
	waitFor(t, "the copy to be under way", func() bool {
		p := progress(t, first[0])
		return p.Fleet.Phase == metadata.PhaseCopy && p.Fleet.DocumentsCopied > 0
	})
	lifecycleCall(t, first[1], "pause") // any node acts on the shared state
	// Every partition handed back, and the copy still: a node learns of the pause at its next state
	// poll (200 ms), so until then it may claim one more partition and copy one more batch after a
	// moment with none active.
	var paused web.Progress
	waitFor(t, "every partition handed back", func() bool {
		before := progress(t, first[0])
		time.Sleep(500 * time.Millisecond)
		paused = progress(t, first[0])
		return paused.State == metadata.StatePaused && paused.Fleet.Partitions.Active == 0 &&
			paused.Fleet.DocumentsCopied == before.Fleet.DocumentsCopied
	})
	if paused.Fleet.Partitions.Done == paused.Fleet.Partitions.Total {
		t.Fatalf("the copy finished before the pause took effect (%+v); the test needs a bigger source", paused.Fleet.Partitions)
	}
	t.Logf("paused with %d of %d partitions done, %d documents copied", paused.Fleet.Partitions.Done, paused.Fleet.Partitions.Total, paused.Fleet.DocumentsCopied)
	for _, n := range first {
		n.kill(t)
	}

	second := []*fleetNode{startNode(t, c, "second-a"), startNode(t, c, "second-b")}
	// The new fleet reads PAUSED from the destination and does nothing: two looks a state poll
	// apart see the same copy, no partition claimed.
	still := waitState(t, second[0], metadata.StatePaused)
	time.Sleep(time.Second)
	again := progress(t, second[1])
	if again.State != metadata.StatePaused || again.Fleet.DocumentsCopied != still.Fleet.DocumentsCopied ||
		again.Fleet.DocumentsCopied != paused.Fleet.DocumentsCopied || again.Fleet.Partitions.Active != 0 {
		t.Fatalf("a paused sync moved: paused %+v, then %+v", paused.Fleet, again.Fleet)
	}
	lifecycleCall(t, second[1], "resume")
	waitNodeCanCommit(t, second[0])
	stopLoadCommitAndVerify(t, load, second[0], c)
}

// TestCommitUnderLoad keeps writing to the source until the moment before /commit, commits, and
// checks the destination is equal, with its index settings restored.
func TestCommitUnderLoad(t *testing.T) {
	t.Parallel()
	c := sandboxtest.Pair(t)
	seedSource(t, c, ceaDocs)
	load := startLoad(t, c)
	n := []*fleetNode{startNode(t, c, "commit-a"), startNode(t, c, "commit-b")}
	startSync(t, n[0])
	waitNodeCanCommit(t, n[1])
	waitFor(t, "2,000 change events applied live", func() bool {
		p := progress(t, n[0])
		return p.TotalEventsApplied != nil && *p.TotalEventsApplied >= 2000
	})

	// A pause in the apply phase stops the applier after its batch in flight, while the source
	// keeps writing; resume picks up from the checkpoint.
	lifecycleCall(t, n[0], "pause")
	waitState(t, n[1], metadata.StatePaused)
	var frozen web.Progress
	waitFor(t, "the applier to stop", func() bool {
		before := progress(t, n[0])
		time.Sleep(500 * time.Millisecond)
		frozen = progress(t, n[1])
		return *frozen.TotalEventsApplied == *before.TotalEventsApplied
	})
	time.Sleep(time.Second)
	still := progress(t, n[0])
	if *still.TotalEventsApplied != *frozen.TotalEventsApplied || *still.Fleet.Applier.AppliedThrough != *frozen.Fleet.Applier.AppliedThrough || still.CanCommit {
		t.Fatalf("a paused applier moved or can commit: %d events through %v, then %d through %v, canCommit %v",
			*frozen.TotalEventsApplied, frozen.Fleet.Applier.AppliedThrough, *still.TotalEventsApplied, still.Fleet.Applier.AppliedThrough, still.CanCommit)
	}
	lifecycleCall(t, n[1], "resume")
	waitFor(t, "the applier to go on after resume", func() bool {
		p := progress(t, n[0])
		return p.CanCommit && *p.TotalEventsApplied > *still.TotalEventsApplied
	})
	stopLoadCommitAndVerify(t, load, n[1], c)
}

// TestCommitFailsLoudlyWhileWritesContinue commits while the load still writes: the source takes
// writes after the commit point, so the commit must fail, say why, and leave the sync RUNNING with
// nothing lost; once the writes stop, a second commit succeeds.
func TestCommitFailsLoudlyWhileWritesContinue(t *testing.T) {
	t.Parallel()
	c := sandboxtest.Pair(t)
	seedSource(t, c, 3000)
	load := startLoad(t, c)
	n := startNode(t, c, "eager")
	startSync(t, n)
	waitNodeCanCommit(t, n)
	lifecycleCall(t, n, "commit")
	var p web.Progress
	waitFor(t, "the commit to fail", func() bool {
		p = progress(t, n)
		if p.State == metadata.StateCommitted {
			t.Fatal("the commit completed although the source kept taking writes")
		}
		return p.Fleet.Commit != nil && p.Fleet.Commit.Step == metadata.CommitStepFailed
	})
	if p.State != metadata.StateRunning || !strings.Contains(p.Fleet.Commit.Failure, "commit failed") ||
		!slices.ContainsFunc(p.Warnings, func(w string) bool { return strings.Contains(w, "commit failed") }) {
		t.Fatalf("after a failed commit: state %s, commit %+v, warnings %v", p.State, p.Fleet.Commit, p.Warnings)
	}
	t.Logf("failure reported: %s", p.Fleet.Commit.Failure)
	t.Log(load.stop(t))
	waitNodeCanCommit(t, n)
	assertCommitted(t, commitAndWait(t, n))
	assertVerified(t, c)
}

// TestNamespaceFiltersSyncExactlySelectedNamespaces runs a sync per filter over the same source, with
// change events on every namespace (selected or not, existing or new) after the copy, commits, and
// checks the destination has exactly the namespaces the filter selects, each equal to the source.
func TestNamespaceFiltersSyncExactlySelectedNamespaces(t *testing.T) {
	t.Parallel()
	existing := []string{"shop.orders", "shop.returns", "shop.tmp_cache", "crm.people", "crm.Leads",
		"logs2024.events", "logs2025.events", "archive.old"}
	// Collections created by change events after the copy, one per database.
	created := []string{"shop.fresh", "crm.fresh", "logs2024.fresh", "logs2025.fresh", "archive.fresh"}
	for _, tc := range []struct {
		name   string
		filter string // the /start body's filter parameters
		want   []string
	}{
		{"include a database", `"includeNamespaces": [{"database": "shop"}]`,
			[]string{"shop.fresh", "shop.orders", "shop.returns", "shop.tmp_cache"}},
		{"include collections and a database", `"includeNamespaces": [{"database": "shop", "collections": ["orders"]}, {"database": "crm"}]`,
			[]string{"crm.Leads", "crm.fresh", "crm.people", "shop.orders"}},
		{"include by regex, exclude a database", `"includeNamespaces": [{"databaseRegex": {"pattern": "^logs20"}}], "excludeNamespaces": [{"database": "logs2024"}]`,
			[]string{"logs2025.events", "logs2025.fresh"}},
		{"exclude only, by collection regex and database", `"excludeNamespaces": [{"database": "shop", "collectionsRegex": {"pattern": "^tmp_"}}, {"database": "archive"}]`,
			[]string{"crm.Leads", "crm.fresh", "crm.people", "logs2024.events", "logs2024.fresh", "logs2025.events", "logs2025.fresh",
				"shop.fresh", "shop.orders", "shop.returns"}},
		{"regex options", `"includeNamespaces": [{"databaseRegex": {"pattern": "^CRM$", "options": "i"}, "collectionsRegex": {"pattern": "^leads$", "options": "i"}}]`,
			[]string{"crm.Leads"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c := sandboxtest.Pair(t)
			src := sandboxtest.Connect(t, c.Source)
			insert := func(ns string, from, to int) {
				t.Helper()
				db, coll, _ := strings.Cut(ns, ".")
				var docs []any
				for i := from; i < to; i++ {
					docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "ns", Value: ns}, {Key: "n", Value: i}})
				}
				if _, err := src.Database(db).Collection(coll).InsertMany(ctx, docs); err != nil {
					t.Fatal(err)
				}
			}
			for _, ns := range existing {
				insert(ns, 0, 50)
			}
			n := startNode(t, c, "filter")
			r := call(t, http.MethodPost, n.api+"/api/v1/start", `{"source": "cluster0", "destination": "cluster1", `+tc.filter+`}`)
			if r.status != http.StatusOK {
				t.Fatalf("start: %d %s", r.status, r.raw)
			}
			waitCopied(t, n)
			// Change events on every namespace: inserts, updates and deletes on the existing ones,
			// and new collections.
			for _, ns := range existing {
				insert(ns, 50, 60)
				db, coll, _ := strings.Cut(ns, ".")
				if _, err := src.Database(db).Collection(coll).UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: 10}}}},
					bson.D{{Key: "$set", Value: bson.D{{Key: "touched", Value: true}}}}); err != nil {
					t.Fatal(err)
				}
				if _, err := src.Database(db).Collection(coll).DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 40}, {Key: "$lt", Value: 45}}}}); err != nil {
					t.Fatal(err)
				}
			}
			for _, ns := range created {
				insert(ns, 0, 20)
			}
			waitCaughtUp(t, n)
			assertCommitted(t, commitAndWait(t, n))

			if got := destinationNamespaces(t, sandboxtest.Connect(t, c.Destination)); !slices.Equal(got, tc.want) {
				t.Fatalf("the destination has %v, want exactly %v", got, tc.want)
			}
			r2 := runFleetsync(t, "verify", "--cluster0", c.Source, "--cluster1", c.Destination, "--include", strings.Join(tc.want, ","))
			if r2.code != exitOK || !strings.Contains(r2.stdout, "EQUAL") {
				t.Fatalf("verify of the selected namespaces: exit %d\n%s%s", r2.code, r2.stdout, r2.stderr)
			}
		})
	}
}

// destinationNamespaces lists the user namespaces on a cluster, sorted.
func destinationNamespaces(t *testing.T, client *mongo.Client) []string {
	t.Helper()
	colls, err := catalog.ListCollections(context.Background(), client, namespace.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range colls {
		out = append(out, c.NS.String())
	}
	sort.Strings(out)
	return out
}

// With preExistingDestinationData the destination already holds some of the source's documents,
// some of them different. The source's version wins: after the commit both clusters are equal.
func TestPreExistingDestinationDataEndsEqualToTheSource(t *testing.T) {
	t.Parallel()
	c := sandboxtest.Pair(t)
	ctx := context.Background()
	var src, pre []any
	for i := range 3000 {
		src = append(src, bson.D{{Key: "_id", Value: i}, {Key: "sku", Value: fmt.Sprintf("item-%d", i)}, {Key: "qty", Value: i % 7}})
		switch {
		case i%10 == 0: // there already, different: a stale copy from an earlier attempt
			pre = append(pre, bson.D{{Key: "_id", Value: i}, {Key: "sku", Value: "stale"}})
		case i%10 == 1: // there already, equal
			pre = append(pre, src[i])
		}
	}
	if _, err := sandboxtest.Connect(t, c.Source).Database("shop").Collection("items").InsertMany(ctx, src); err != nil {
		t.Fatal(err)
	}
	if _, err := sandboxtest.Connect(t, c.Destination).Database("shop").Collection("items").InsertMany(ctx, pre); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, c, "solo", "--partition-size", "64KB")
	r := call(t, http.MethodPost, n.api+"/api/v1/start", `{"source":"cluster0","destination":"cluster1","preExistingDestinationData":true}`)
	if r.status != http.StatusOK || r.body["success"] != true {
		t.Fatalf("start: %d %s", r.status, r.raw)
	}
	waitNodeCanCommit(t, n)
	assertCommitted(t, commitAndWait(t, n))
	assertVerified(t, c)
}
