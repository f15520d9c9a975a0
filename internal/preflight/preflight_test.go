package preflight

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// Version strings as real servers report them in buildInfo.version.
func TestCheckVersions(t *testing.T) {
	for _, c := range []struct {
		src, dst string
		want     string // "" means accepted
	}{
		{"7.0.12", "7.0.14", ""},
		{"7.0.12", "7.3.1", ""}, // a rapid release of the same series
		{"8.0.0-rc3", "8.0.4", ""},
		{"4.4.29", "4.4.18", ""},
		{"5.0.0", "5.0.0", ""}, // the sandbox's report
		{"6.0.15", "7.0.12", "the source (cluster0) runs MongoDB 6.0.15 and the destination (cluster1) 7.0.12; fleetsync syncs within one release series: upgrade the older cluster to 7 first"},
		{"4.4.29", "4.2.25", "cluster1 runs MongoDB 4.2.25; fleetsync needs 4.4 or newer"},
		{"4.2.25", "4.4.29", "cluster0 runs MongoDB 4.2.25; fleetsync needs 4.4 or newer"},
		{"4.4.1", "5.0.3", "upgrade the older cluster to 5 first"},
		{"seven", "7.0.1", `cluster0: cannot read the server version "seven"`},
	} {
		err := CheckVersions(Cluster{Label: "cluster0", Version: c.src}, Cluster{Label: "cluster1", Version: c.dst})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s → %s: refused: %v", c.src, c.dst, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s → %s: %v, want %q", c.src, c.dst, err, c.want)
		}
	}
}

func TestCheckTopologyAndWriteBlocking(t *testing.T) {
	standalone := Cluster{Label: "cluster0", Version: "5.0.0", HasOplog: true}
	if err := CheckTopology(standalone, false); err == nil || !strings.Contains(err.Error(), "standalone") || !strings.Contains(err.Error(), SandboxFlag) {
		t.Fatalf("standalone without the flag: %v", err)
	}
	if err := CheckTopology(standalone, true); err != nil {
		t.Fatalf("standalone with the flag: %v", err)
	}
	for _, c := range []Cluster{{ReplicaSet: true}, {Mongos: true}} {
		if err := CheckTopology(c, false); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
	}
	for v, want := range map[string]bool{"5.0.0": false, "4.4.29": false, "6.0.0": true, "7.0.12": true, "8.0.4": true, "junk": false} {
		if got := SupportsWriteBlocking(Cluster{Version: v}); got != want {
			t.Errorf("SupportsWriteBlocking(%s) = %v", v, got)
		}
	}
}

// The capture keeps the change events in the spool from the sync's start, so the oplog must only
// hold the capture's lag and a takeover: a copy longer than the oplog is a warning with the spool's
// likely size, and only an oplog under MinOplogWindow plus the lease TTL is refused.
func TestCheckOplogWindow(t *testing.T) {
	const gb = 1 << 30
	const ttl = 10 * time.Second // node.DefaultLeaseTTL
	for _, c := range []struct {
		name    string
		w       OplogWindow
		bytes   int64
		ttl     time.Duration
		refusal []string // parts of the refusal; nil: accepted
		warning []string // parts of the warning; nil: none
	}{
		{name: "not capped: never drops entries (the sandbox)", w: OplogWindow{}, bytes: 1000 * gb, ttl: ttl},
		{name: "the copy fits the window", w: OplogWindow{Capped: true, Span: time.Hour, Capacity: 48 * time.Hour, Bytes: gb}, bytes: 100 * gb, ttl: ttl},
		{name: "the copy outlasts the window: 100 GB at 10 MB/s is 2.8 h, the oplog 2 h",
			w: OplogWindow{Capped: true, Span: time.Hour, Capacity: 2 * time.Hour, Bytes: gb}, bytes: 100 * gb, ttl: ttl,
			// 1 GB of oplog an hour for 10,240 s of copy.
			warning: []string{"copying 100.0 GB takes about 2h51m0s", "(about 2h0m0s)", "spool on the destination", "about 2.8 GB there"}},
		{name: "no write rate to estimate the spool from",
			w: OplogWindow{Capped: true, Span: 0, Capacity: time.Hour}, bytes: 100 * gb, ttl: ttl,
			warning: []string{"an unknown amount"}},
		{name: "a window just long enough for the lag and a takeover",
			w: OplogWindow{Capped: true, Span: MinOplogWindow + ttl, Capacity: MinOplogWindow + ttl, Bytes: gb}, bytes: gb, ttl: ttl},
		{name: "ten minutes: too short to survive a stalled capture",
			w: OplogWindow{Capped: true, Span: 10 * time.Minute, Capacity: 10 * time.Minute, Bytes: gb}, bytes: gb, ttl: ttl,
			refusal: []string{"holds about 10m0s of writes", "at least 15m10s", "replSetResizeOplog"}},
		{name: "a long lease TTL needs a longer window",
			w: OplogWindow{Capped: true, Span: 20 * time.Minute, Capacity: 20 * time.Minute, Bytes: gb}, bytes: gb, ttl: 10 * time.Minute,
			refusal: []string{"at least 25m0s", "(10m0s, the lease TTL)"}},
	} {
		warning, err := CheckOplogWindow(c.w, c.bytes, c.ttl)
		switch {
		case c.refusal == nil && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.refusal != nil && err == nil:
			t.Errorf("%s: accepted (warning %q), want a refusal", c.name, warning)
		}
		for _, part := range c.refusal {
			if err != nil && !strings.Contains(err.Error(), part) {
				t.Errorf("%s: the refusal %q does not say %q", c.name, err, part)
			}
		}
		if c.warning == nil && warning != "" {
			t.Errorf("%s: unexpected warning %q", c.name, warning)
		}
		if c.warning != nil && warning == "" {
			t.Errorf("%s: no warning", c.name)
		}
		for _, part := range c.warning {
			if warning != "" && !strings.Contains(warning, part) {
				t.Errorf("%s: the warning %q does not say %q", c.name, warning, part)
			}
		}
	}
}

// Against real sandbox servers: what Probe reads, the destination check, and the oplog window of a
// server whose oplog is not capped.
func TestProbeAndDestinationChecksOnSandbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := sandboxtest.Pair(t)
	src, dst := sandboxtest.Connect(t, c.Source), sandboxtest.Connect(t, c.Destination)
	s, err := Probe(ctx, "cluster0", src)
	if err != nil || s.Version != "5.0.0" || s.ReplicaSet || s.Mongos || !s.HasOplog {
		t.Fatalf("source: %+v, %v", s, err)
	}
	d, err := Probe(ctx, "cluster1", dst)
	if err != nil || d.HasOplog {
		t.Fatalf("destination: %+v, %v", d, err)
	}
	if _, err := src.Database("shop").Collection("orders").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	w, ok, err := ReadOplogWindow(ctx, src)
	if err != nil || !ok || w.Capped {
		t.Fatalf("oplog window %+v ok %v err %v; the sandbox's oplog is not capped", w, ok, err)
	}
	if w.Bytes <= 0 {
		t.Fatalf("oplog window %+v: no size read from collStats, so no write rate for the spool estimate", w)
	}
	if n, err := EstimateBytes(ctx, src, namespace.Filter{}); err != nil || n <= 0 {
		t.Fatalf("estimate %d, %v", n, err)
	}

	if err := CheckDestinationFree(ctx, dst, namespace.Filter{}); err != nil {
		t.Fatalf("an empty destination: %v", err)
	}
	for _, ns := range []string{"shop.orders", "shop.a", "shop.b", "shop.c", "shop.d", "shop.e", "crm.people"} {
		db, coll, _ := strings.Cut(ns, ".")
		if _, err := dst.Database(db).Collection(coll).InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	err = CheckDestinationFree(ctx, dst, namespace.Filter{})
	if err == nil || !strings.Contains(err.Error(), "already has 7 of the namespaces to sync (crm.people, shop.a, shop.b, shop.c, shop.d, and 2 more)") {
		t.Fatalf("a destination with data: %v", err)
	}
	only := namespace.Filter{Include: []namespace.Rule{{Database: "crm"}}}
	if err := CheckDestinationFree(ctx, dst, only); err == nil || !strings.Contains(err.Error(), "1 of the namespaces to sync (crm.people)") {
		t.Fatalf("filtered to crm: %v", err)
	}
	if err := CheckDestinationFree(ctx, dst, namespace.Filter{Include: []namespace.Rule{{Database: "billing"}}}); err != nil {
		t.Fatalf("filtered to a database the destination lacks: %v", err)
	}
}
