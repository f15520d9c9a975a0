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

func TestCheckOplogWindow(t *testing.T) {
	const gb = 1 << 30
	for _, c := range []struct {
		w     OplogWindow
		bytes int64
		ok    bool
	}{
		{OplogWindow{}, 1000 * gb, true}, // not capped: never drops entries (the sandbox)
		{OplogWindow{Capped: true, Span: time.Hour, Capacity: 48 * time.Hour}, 100 * gb, true},    // 100 GB at 10 MB/s is 2.8 h
		{OplogWindow{Capped: true, Span: time.Hour, Capacity: 2 * time.Hour}, 100 * gb, false},    // 2 h < 2.8 h
		{OplogWindow{Capped: true, Span: 10 * time.Minute, Capacity: 10 * time.Minute}, gb, true}, // 1 GB takes 1.7 min
	} {
		err := CheckOplogWindow(c.w, c.bytes)
		if (err == nil) != c.ok {
			t.Errorf("%+v, %d GB: %v", c.w, c.bytes/gb, err)
		}
		if err != nil && (!strings.Contains(err.Error(), "replSetResizeOplog") || !strings.Contains(err.Error(), "100.0 GB")) {
			t.Errorf("the refusal does not say what to do: %v", err)
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
