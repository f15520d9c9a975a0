package membership_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fleetsync/fleetsync/internal/membership"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/lease"
)

const (
	metaDB = "fleetsync_internal"

	// testRefresh re-reads the registry often, so that tests about it finish quickly.
	testRefresh = 200 * time.Millisecond

	// Deadlines for what a user would check, generous for a shared, noisy machine running -race:
	// measured here, a join converges in well under a second and a killed node is noticed in about one.
	convergeDeadline = 5 * time.Second
	detectDeadline   = 10 * time.Second
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newRegistry returns fleetsync_internal.nodes on a fresh destination.
func newRegistry(t *testing.T) *mongo.Collection {
	client := sandboxtest.Connect(t, sandboxtest.Server(t, false))
	return client.Database(metaDB).Collection("nodes")
}

func nodeOptions(registry *mongo.Collection, syncID, name string) membership.Options {
	return membership.Options{
		SyncID: syncID, Name: name, BindAddr: "127.0.0.1", Registry: registry,
		RefreshInterval: testRefresh,
	}
}

// join joins opts's node, closed (abruptly) when the test ends unless the test stopped it.
func join(t *testing.T, ctx context.Context, opts membership.Options) *membership.Membership {
	t.Helper()
	m, err := membership.Join(ctx, opts)
	if err != nil {
		t.Fatalf("joining %s: %v", opts.Name, err)
	}
	t.Cleanup(m.Close)
	return m
}

func byName(m *membership.Membership) map[string]membership.Member {
	out := map[string]membership.Member{}
	for _, mem := range m.Members() {
		out[mem.Name] = mem
	}
	return out
}

func describe(m *membership.Membership) string {
	var s []string
	for _, mem := range m.Members() {
		s = append(s, fmt.Sprintf("%s(alive=%t registered=%t gossip=%s api=%q)", mem.Name, mem.Alive, mem.Registered, mem.GossipAddr, mem.APIAddr))
	}
	return strings.Join(s, " ")
}

// eventually polls ok until it holds or deadline passes, and returns how long it took.
func eventually(t *testing.T, deadline time.Duration, what string, ok func() bool, state func() string) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > deadline {
			t.Fatalf("%s: not within %s; now %s", what, deadline, state())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// seesAlive says whether m lists exactly names, all alive.
func seesAlive(m *membership.Membership, names ...string) bool {
	got := m.Members()
	if len(got) != len(names) {
		return false
	}
	sort.Strings(names)
	for i, mem := range got {
		if mem.Name != names[i] || !mem.Alive {
			return false
		}
	}
	return true
}

// Three nodes started one after the other, given nothing but the registry, find each other, and each
// lists all three alive with the gossip address the others registered.
func TestNodesFindEachOtherThroughTheRegistry(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	registry := newRegistry(t)

	core, logs := observer.New(zapcore.DebugLevel)
	optsA := nodeOptions(registry, "default", "a")
	optsA.Logger = zap.New(core)
	start := time.Now()
	a := join(t, ctx, optsA)
	b := join(t, ctx, nodeOptions(registry, "default", "b"))
	c := join(t, ctx, nodeOptions(registry, "default", "c"))
	joined := time.Since(start)

	for _, m := range []*membership.Membership{a, b, c} {
		took := eventually(t, convergeDeadline, "every node sees a, b and c alive",
			func() bool { return seesAlive(m, "a", "b", "c") }, func() string { return describe(m) })
		t.Logf("three Joins took %s; then all three alive after %s more", joined, took)
	}
	want := map[string]string{} // name -> gossip address, the same in every view
	for _, m := range []*membership.Membership{a, b, c} {
		for _, mem := range m.Members() {
			if prev, ok := want[mem.Name]; ok && prev != mem.GossipAddr {
				t.Errorf("%s has gossip address %s in one view and %s in another", mem.Name, prev, mem.GossipAddr)
			}
			want[mem.Name] = mem.GossipAddr
			if !strings.HasPrefix(mem.GossipAddr, "127.0.0.1:") || strings.HasSuffix(mem.GossipAddr, ":0") {
				t.Errorf("%s's gossip address is %q, want 127.0.0.1 with the port chosen", mem.Name, mem.GossipAddr)
			}
			if mem.StartedAt.Before(start.Add(-time.Second)) || mem.StartedAt.After(time.Now()) {
				t.Errorf("%s started at %s, want during this test (from %s)", mem.Name, mem.StartedAt, start)
			}
		}
	}
	var doc bson.M
	if err := registry.FindOne(ctx, bson.D{{Key: "_id", Value: "default/b"}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc["gossipAddr"] != want["b"] || doc["name"] != "b" || doc["sync"] != "default" || doc["left"] != false {
		t.Errorf("b's registry document is %v; want gossipAddr %s, name b, sync default, left false", doc, want["b"])
	}

	// memberlist's own lines reach the node's logger, at debug level, rather than stderr.
	mlLogs := logs.FilterLoggerName("memberlist").All()
	if len(mlLogs) == 0 {
		t.Error("no memberlist log lines reached a's logger")
	}
	for _, e := range mlLogs {
		if e.Level != zapcore.DebugLevel {
			t.Errorf("memberlist line at %s, want debug: %s", e.Level, e.Message)
		}
	}
}

// A node that stops abruptly (no leave, no release) is seen not alive by the others within seconds,
// stays listed as registered until its registration expires, then disappears; started again under
// its name (on a new port, as a crashed process would be) it is taken back in.
func TestCrashedNodeIsSeenDownAndMayComeBack(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	registry := newRegistry(t)
	const ttl = 2 * time.Second

	a := join(t, ctx, nodeOptions(registry, "default", "a"))
	b := join(t, ctx, nodeOptions(registry, "default", "b"))
	optsC := nodeOptions(registry, "default", "c")
	optsC.TTL = ttl
	c := join(t, ctx, optsC)
	for _, m := range []*membership.Membership{a, b} {
		eventually(t, convergeDeadline, "a and b see c alive", func() bool { return seesAlive(m, "a", "b", "c") }, func() string { return describe(m) })
	}
	oldAddr := byName(a)["c"].GossipAddr

	c.Close()
	for _, m := range []*membership.Membership{a, b} {
		took := eventually(t, detectDeadline, "the others see the crashed node not alive",
			func() bool { return !byName(m)["c"].Alive }, func() string { return describe(m) })
		t.Logf("crashed node seen down after %s", took)
	}
	if !errors.Is(c.Err(), membership.ErrClosed) {
		t.Errorf("c.Err() = %v, want ErrClosed", c.Err())
	}

	// Its registration expires after its TTL (not released: it crashed); then it is no longer listed.
	eventually(t, ttl+convergeDeadline, "the crashed node disappears once its registration expires",
		func() bool { _, listed := byName(a)["c"]; return !listed }, func() string { return describe(a) })

	// Restarted under the same name, it registers again and the others take it back at its new address.
	c2 := join(t, ctx, optsC)
	for _, m := range []*membership.Membership{a, b, c2} {
		eventually(t, convergeDeadline, "everyone sees the restarted node alive",
			func() bool { return seesAlive(m, "a", "b", "c") && byName(m)["c"].GossipAddr != oldAddr },
			func() string { return describe(m) })
	}
}

// A node that leaves gracefully is gone from the others' lists at once, and its registry document is
// marked left with its lease released, so the name is free.
func TestLeavingNodeIsGoneAndReleasesItsName(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	registry := newRegistry(t)

	a := join(t, ctx, nodeOptions(registry, "default", "a"))
	b := join(t, ctx, nodeOptions(registry, "default", "b"))
	c := join(t, ctx, nodeOptions(registry, "default", "c"))
	for _, m := range []*membership.Membership{a, b, c} {
		eventually(t, convergeDeadline, "all see all three", func() bool { return seesAlive(m, "a", "b", "c") }, func() string { return describe(m) })
	}

	start := time.Now()
	if err := b.Leave(ctx); err != nil {
		t.Fatalf("b leaving: %v", err)
	}
	t.Logf("Leave took %s", time.Since(start))
	for _, m := range []*membership.Membership{a, c} {
		took := eventually(t, convergeDeadline, "the others no longer list the node that left",
			func() bool { return seesAlive(m, "a", "c") }, func() string { return describe(m) })
		t.Logf("node that left is gone from the others' lists after %s", took)
	}
	select {
	case <-b.Done():
	default:
		t.Error("Done is not closed after Leave")
	}
	if !errors.Is(b.Err(), membership.ErrLeft) {
		t.Errorf("b.Err() = %v, want ErrLeft", b.Err())
	}

	var doc bson.M
	if err := registry.FindOne(ctx, bson.D{{Key: "_id", Value: "default/b"}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc["left"] != true || doc[lease.FieldOwner] != "" || doc["leftAt"] == nil {
		t.Errorf("b's registry document after Leave is %v; want left true, leftAt set and the lease released (owner \"\")", doc)
	}
}

// A second process with a name in use by a live node is refused with an error that says what to do;
// once the first one has left, the name is free.
func TestNameInUseIsRefusedUntilItsHolderLeaves(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	registry := newRegistry(t)

	first := join(t, ctx, nodeOptions(registry, "default", "a"))
	second, err := membership.Join(ctx, nodeOptions(registry, "default", "a"))
	if err == nil {
		second.Close()
		t.Fatal("a second node named a joined while the first is alive")
	}
	t.Logf("the refusal reads: %v", err)
	var inUse *membership.NameInUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("got %T %v, want a *NameInUseError", err, err)
	}
	host, _ := os.Hostname()
	if inUse.Host != host || inUse.PID != os.Getpid() || inUse.StartedAt.IsZero() || inUse.TTL != 10*time.Second {
		t.Errorf("the error names holder %s pid %d started %s with TTL %s; want this host %s, pid %d, a start time, TTL 10s",
			inUse.Host, inUse.PID, inUse.StartedAt, inUse.TTL, host, os.Getpid())
	}
	for _, want := range []string{`node name "a" is already in use by a live node of sync "default"`, "on " + host, "pick another --name", "wait 10s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error %q does not say %q", err, want)
		}
	}
	if first.Err() != nil || !byName(first)["a"].Registered {
		t.Errorf("the refused attempt disturbed the first node: Err %v, members %s", first.Err(), describe(first))
	}

	if err := first.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	again := join(t, ctx, nodeOptions(registry, "default", "a"))
	if !seesAlive(again, "a") || !byName(again)["a"].Registered {
		t.Errorf("after the first left, the new node a sees %s", describe(again))
	}
}

// Nodes of different syncs sharing a registry never join each other, even when one is sent to the
// other's address (a stale registration whose port another sync's node now uses).
func TestSyncsInOneRegistryStayApart(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	registry := newRegistry(t)

	blueA := join(t, ctx, nodeOptions(registry, "blue", "a"))
	blueB := join(t, ctx, nodeOptions(registry, "blue", "b"))
	greenA := join(t, ctx, nodeOptions(registry, "green", "a")) // the same name in another sync is another node
	greenC := join(t, ctx, nodeOptions(registry, "green", "c"))
	for _, m := range []*membership.Membership{blueA, blueB} {
		eventually(t, convergeDeadline, "blue sees a and b", func() bool { return seesAlive(m, "a", "b") }, func() string { return describe(m) })
	}
	for _, m := range []*membership.Membership{greenA, greenC} {
		eventually(t, convergeDeadline, "green sees a and c", func() bool { return seesAlive(m, "a", "c") }, func() string { return describe(m) })
	}

	// A live blue registration pointing at green c's gossip address: blue nodes dial it at every refresh.
	greenCAddr := byName(greenC)["c"].GossipAddr
	_, err := registry.UpdateOne(ctx, bson.D{{Key: "_id", Value: "blue/ghost"}}, bson.D{
		{Key: "$set", Value: bson.D{
			{Key: "sync", Value: "blue"}, {Key: "name", Value: "ghost"}, {Key: "gossipAddr", Value: greenCAddr},
			{Key: "left", Value: false}, {Key: lease.FieldOwner, Value: "ghost-process"}, {Key: lease.FieldEpoch, Value: int64(1)},
			{Key: lease.FieldTTL, Value: int64(time.Minute / time.Millisecond)},
		}},
		{Key: "$currentDate", Value: bson.D{{Key: lease.FieldRenewedAt, Value: true}}},
	}, mongoOptionsUpsert())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, convergeDeadline, "blue lists the ghost registration", func() bool { _, ok := byName(blueA)["ghost"]; return ok },
		func() string { return describe(blueA) })

	// Give gossip ten refreshes' worth of chances to merge the two syncs.
	time.Sleep(10 * testRefresh)
	checks := []struct {
		m    *membership.Membership
		want []string
	}{{blueA, []string{"a", "b", "ghost"}}, {blueB, []string{"a", "b", "ghost"}}, {greenA, []string{"a", "c"}}, {greenC, []string{"a", "c"}}}
	for _, check := range checks {
		var names []string
		for _, mem := range check.m.Members() {
			names = append(names, mem.Name)
			if mem.Name == "ghost" && mem.Alive {
				t.Errorf("a blue node has the ghost (green c's address) alive: %s", describe(check.m))
			}
		}
		if strings.Join(names, ",") != strings.Join(check.want, ",") {
			t.Errorf("members %s, want %v", describe(check.m), check.want)
		}
	}
	for _, m := range []*membership.Membership{blueA, blueB} {
		if byName(m)["a"].GossipAddr != byName(blueA)["a"].GossipAddr {
			t.Errorf("blue sees a at green a's address: %s", describe(m))
		}
	}
}

func mongoOptionsUpsert() *options.UpdateOptions { return options.Update().SetUpsert(true) }

// Each node's API address reaches the others by gossip alone: a node that never re-reads the registry
// after its Join (when it was alone) still lists the API addresses of the nodes that came later.
func TestAPIAddressTravelsByGossip(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	registry := newRegistry(t)

	optsA := nodeOptions(registry, "default", "a")
	optsA.APIAddr = "127.0.0.1:27182"
	optsA.RefreshInterval = time.Hour
	a := join(t, ctx, optsA)
	optsB := nodeOptions(registry, "default", "b")
	optsB.APIAddr = "127.0.0.1:27183"
	b := join(t, ctx, optsB)
	c := join(t, ctx, nodeOptions(registry, "default", "c")) // no API

	want := map[string]string{"a": "127.0.0.1:27182", "b": "127.0.0.1:27183", "c": ""}
	for _, m := range []*membership.Membership{a, b, c} {
		eventually(t, convergeDeadline, "every node lists every API address",
			func() bool {
				if !seesAlive(m, "a", "b", "c") {
					return false
				}
				for name, api := range want {
					if byName(m)[name].APIAddr != api {
						return false
					}
				}
				return true
			}, func() string { return describe(m) })
	}
	if byName(a)["b"].Registered {
		t.Errorf("a read the registry only when it was alone, yet lists b as registered: the API address may not have come by gossip: %s", describe(a))
	}
}

// When another process takes a node's registration (here an operator rewrites it, as a process that
// found it expired after this one stalled would), the node's membership ends with a lost lease and it
// leaves gossip, without touching the registration that is no longer its own.
func TestLostRegistrationEndsTheMembership(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	registry := newRegistry(t)
	const ttl = 1500 * time.Millisecond // renewed every 500 ms

	optsA := nodeOptions(registry, "default", "a")
	optsA.TTL = ttl
	a := join(t, ctx, optsA)
	b := join(t, ctx, nodeOptions(registry, "default", "b"))
	eventually(t, convergeDeadline, "b sees a", func() bool { return seesAlive(b, "a", "b") }, func() string { return describe(b) })

	_, err := registry.UpdateOne(ctx, bson.D{{Key: "_id", Value: "default/a"}}, bson.D{
		{Key: "$set", Value: bson.D{{Key: lease.FieldOwner, Value: "thief"}}},
		{Key: "$inc", Value: bson.D{{Key: lease.FieldEpoch, Value: 1}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	case <-time.After(ttl + convergeDeadline):
		t.Fatal("a did not notice its registration was taken")
	}
	var lost *lease.LostError
	if !errors.As(a.Err(), &lost) || !strings.Contains(lost.Reason, "thief took it over") {
		t.Errorf("a.Err() = %v, want a LostError saying the thief took it over", a.Err())
	}
	eventually(t, convergeDeadline, "b no longer has a alive", func() bool { return !byName(b)["a"].Alive }, func() string { return describe(b) })

	if err := a.Leave(ctx); err != nil {
		t.Errorf("Leave after losing the registration: %v", err)
	}
	var doc bson.M
	if err := registry.FindOne(ctx, bson.D{{Key: "_id", Value: "default/a"}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc[lease.FieldOwner] != "thief" || doc["left"] != false {
		t.Errorf("a's old membership changed the registration it lost: %v", doc)
	}
}

// Ending Join's context ends the membership: the node leaves gossip, and its registration is left to
// expire; a later Leave still releases it.
func TestEndOfContextEndsTheMembership(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	registry := newRegistry(t)

	a := join(t, ctx, nodeOptions(registry, "default", "a"))
	bctx, cancel := context.WithCancel(ctx)
	b := join(t, bctx, nodeOptions(registry, "default", "b"))
	eventually(t, convergeDeadline, "a sees b", func() bool { return seesAlive(a, "a", "b") }, func() string { return describe(a) })

	cancel()
	select {
	case <-b.Done():
	case <-time.After(convergeDeadline):
		t.Fatal("the membership did not end with its context")
	}
	if !errors.Is(b.Err(), context.Canceled) {
		t.Errorf("b.Err() = %v, want context.Canceled", b.Err())
	}
	eventually(t, convergeDeadline, "a sees b not alive", func() bool { return !byName(a)["b"].Alive }, func() string { return describe(a) })
	if !byName(a)["b"].Registered {
		t.Errorf("b's registration should live on until it expires: %s", describe(a))
	}

	if err := b.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	var doc bson.M
	if err := registry.FindOne(ctx, bson.D{{Key: "_id", Value: "default/b"}}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc["left"] != true || doc[lease.FieldOwner] != "" {
		t.Errorf("after Leave, b's registration is %v; want left and released", doc)
	}
}
