// Package preflight holds the checks /start makes before a sync begins, so that a sync that cannot
// succeed is refused in one sentence at once, not after hours of copying: supported and matching
// server versions, cluster topologies that give change events, write blocking where it is asked for,
// a destination free of the namespaces to sync, and an oplog long enough for the capture of change
// events to survive a takeover.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/catalog"
	"github.com/fleetsync/fleetsync/internal/namespace"
)

// Cluster is what a cluster says about itself.
type Cluster struct {
	Label      string // "cluster0" or "cluster1"
	Version    string // buildInfo's version, e.g. "7.0.12"
	ReplicaSet bool
	Mongos     bool
	MaxWire    int32 // maxWireVersion: which features the server speaks (7: 4.0, 17: 6.0)
	HasOplog   bool
}

// MinVersion is the oldest MongoDB fleetsync syncs: the first with the change stream and oplog
// features its applier relies on, and the oldest mongosync supports.
var MinVersion = [2]int{4, 4}

// Probe asks a cluster for its version and topology.
func Probe(ctx context.Context, label string, client *mongo.Client) (Cluster, error) {
	c := Cluster{Label: label}
	var build struct {
		Version string `bson:"version"`
	}
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&build); err != nil {
		return c, fmt.Errorf("%s: asking for its version (buildInfo): %w", label, err)
	}
	c.Version = build.Version
	var hello struct {
		SetName string `bson:"setName"`
		Msg     string `bson:"msg"`
		MaxWire int32  `bson:"maxWireVersion"`
	}
	// isMaster rather than hello: every server version answers it.
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "isMaster", Value: 1}}).Decode(&hello); err != nil {
		return c, fmt.Errorf("%s: asking what it is (isMaster): %w", label, err)
	}
	c.ReplicaSet, c.Mongos, c.MaxWire = hello.SetName != "", hello.Msg == "isdbgrid", hello.MaxWire
	if !c.Mongos {
		names, err := client.Database("local").ListCollectionNames(ctx, bson.D{{Key: "name", Value: "oplog.rs"}})
		c.HasOplog = err == nil && len(names) == 1
	}
	return c, nil
}

// majorMinor reads "7.0.12" as [7 0]; a version it cannot read is an error.
func majorMinor(v string) ([2]int, error) {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return [2]int{}, fmt.Errorf("cannot read the server version %q", v)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return [2]int{}, fmt.Errorf("cannot read the server version %q", v)
	}
	return [2]int{major, minor}, nil
}

// release is the version that names a MongoDB release series: the major from 5.0 on (5.0, 6.0, ...
// with rapid releases in between), major.minor before.
func release(v [2]int) string {
	if v[0] >= 5 {
		return strconv.Itoa(v[0])
	}
	return fmt.Sprintf("%d.%d", v[0], v[1])
}

// CheckVersions refuses versions older than MinVersion and a source and destination of different
// release series: document and index formats, and the events a source emits, are only known to
// apply cleanly to a destination of the same series.
func CheckVersions(src, dst Cluster) error {
	sv, err := majorMinor(src.Version)
	if err != nil {
		return fmt.Errorf("%s: %w", src.Label, err)
	}
	dv, err := majorMinor(dst.Version)
	if err != nil {
		return fmt.Errorf("%s: %w", dst.Label, err)
	}
	for _, c := range []struct {
		Cluster
		v [2]int
	}{{src, sv}, {dst, dv}} {
		if c.v[0] < MinVersion[0] || (c.v[0] == MinVersion[0] && c.v[1] < MinVersion[1]) {
			return fmt.Errorf("%s runs MongoDB %s; fleetsync needs %d.%d or newer: upgrade it first", c.Label, c.Version, MinVersion[0], MinVersion[1])
		}
	}
	if release(sv) != release(dv) {
		return fmt.Errorf("the source (%s) runs MongoDB %s and the destination (%s) %s; fleetsync syncs within one release series: "+
			"upgrade the older cluster to %s first", src.Label, src.Version, dst.Label, dst.Version, release(maxVersion(sv, dv)))
	}
	return nil
}

func maxVersion(a, b [2]int) [2]int {
	if a[0] > b[0] || (a[0] == b[0] && a[1] > b[1]) {
		return a
	}
	return b
}

// SandboxFlag is the node flag that accepts the embedded sandbox's test servers.
const SandboxFlag = "--sandbox"

// CheckTopology refuses a standalone server: it has no change streams, and a standalone source
// cannot be cut over safely. The embedded sandbox's servers are standalone (one with an oplog);
// allowSandbox (the node's --sandbox flag) accepts them, and only them.
func CheckTopology(c Cluster, allowSandbox bool) error {
	if c.ReplicaSet || c.Mongos {
		return nil
	}
	if allowSandbox {
		return nil
	}
	return fmt.Errorf("%s is a standalone server; fleetsync needs replica sets or sharded clusters on both sides "+
		"(convert it to a one-member replica set). For fleetsync's own sandbox test servers only, start the nodes with %s", c.Label, SandboxFlag)
}

// SupportsWriteBlocking reports whether the cluster has setUserWriteBlockMode (MongoDB 6.0+).
func SupportsWriteBlocking(c Cluster) bool {
	v, err := majorMinor(c.Version)
	return err == nil && v[0] >= 6
}

// maxListed bounds how many conflicting namespaces an error names.
const maxListed = 5

// CheckDestinationFree refuses a destination that already holds namespaces the sync would write,
// since the copy would mix them with the source's documents.
func CheckDestinationFree(ctx context.Context, destination *mongo.Client, filter namespace.Filter) error {
	colls, err := catalog.ListCollections(ctx, destination, filter)
	if err != nil {
		return fmt.Errorf("cluster1: listing its collections: %w", err)
	}
	if len(colls) == 0 {
		return nil
	}
	var names []string
	for i, c := range colls {
		if i == maxListed {
			names = append(names, fmt.Sprintf("and %d more", len(colls)-maxListed))
			break
		}
		names = append(names, c.NS.String())
	}
	return fmt.Errorf("the destination already has %d of the namespaces to sync (%s); drop them, narrow includeNamespaces/excludeNamespaces, "+
		"or pass \"preExistingDestinationData\": true to copy into them", len(colls), strings.Join(names, ", "))
}

// OplogWindow is how much time the source's oplog spans, or will span once full.
type OplogWindow struct {
	Span time.Duration // newest entry's time minus oldest's
	// Capacity estimates the window once the oplog is full, at the rate it filled so far; it
	// equals Span for a full oplog. Zero when the oplog is not capped (it never drops entries).
	Capacity time.Duration
	Capped   bool
	// Bytes is the size of the entries the oplog holds now (collStats size): over Span, the
	// source's write rate, which is also the rate the capture's spool grows at.
	Bytes int64
}

// WriteRate is the source's oplog write rate in bytes per second, measured over the window; 0
// when it cannot be told (an empty oplog, or one whose entries share one second).
func (w OplogWindow) WriteRate() float64 {
	if w.Span < time.Second || w.Bytes <= 0 {
		return 0
	}
	return float64(w.Bytes) / w.Span.Seconds()
}

// ReadOplogWindow measures the source's oplog. ok is false when it has none to read (a mongos,
// or no access to local), in which case the check is skipped.
func ReadOplogWindow(ctx context.Context, source *mongo.Client) (w OplogWindow, ok bool, err error) {
	oplog := source.Database("local").Collection("oplog.rs")
	var stats struct {
		Size    float64 `bson:"size"`
		MaxSize float64 `bson:"maxSize"`
		Capped  bool    `bson:"capped"`
	}
	if err := source.Database("local").RunCommand(ctx, bson.D{{Key: "collStats", Value: "oplog.rs"}}).Decode(&stats); err != nil {
		return w, false, nil
	}
	first, err1 := oplog.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "$natural", Value: 1}})).Raw()
	last, err2 := oplog.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}})).Raw()
	if errors.Is(err1, mongo.ErrNoDocuments) || errors.Is(err2, mongo.ErrNoDocuments) {
		return OplogWindow{Capped: stats.Capped}, true, nil
	}
	if err1 != nil || err2 != nil {
		return w, false, errors.Join(err1, err2)
	}
	t0, _, _ := first.Lookup("ts").TimestampOK()
	t1, _, _ := last.Lookup("ts").TimestampOK()
	w = OplogWindow{Span: time.Duration(int64(t1)-int64(t0)) * time.Second, Capped: stats.Capped, Bytes: int64(stats.Size)}
	if stats.Capped {
		w.Capacity = w.Span
		if stats.Size > 0 && stats.MaxSize > stats.Size {
			w.Capacity = time.Duration(float64(w.Span) * stats.MaxSize / stats.Size)
		}
	}
	return w, true, nil
}

// AssumedCopyRate is the copy throughput the oplog check assumes, in bytes per second: a cautious
// figure for one node, so that the estimates err on the side of a longer copy.
const AssumedCopyRate = 10 << 20

// MinOplogWindow is the least oplog window a sync accepts, on top of one capture takeover (the
// capture lease's TTL). From its start the sync's capture copies the source's change events into
// the spool on the destination, so the oplog only has to hold what the capture has not read yet:
// its lag, normally a second or two, since it only appends. What the window must survive is the
// capture standing still: a capturing node that dies is replaced only once its lease expires (the
// TTL), and then the new capturer connects and resumes; a destination electing a new primary
// (about 10 to 30 s) or a burst of writes on the source holds it back too. 15 minutes covers those
// many times over, and it is the bound under which mongosync itself reports its
// estimatedOplogTimeRemaining as "less than 15 minutes" and calls the oplog too small.
const MinOplogWindow = 15 * time.Minute

// CheckOplogWindow judges the source's oplog for a sync of totalBytes whose capture lease has the
// given TTL. It refuses an oplog that could not hold the capture's lag and a takeover
// (MinOplogWindow plus takeover). An oplog that holds those but not the whole copy is no reason to
// refuse any more, since the capture keeps the events in the spool on the destination; it gets a
// warning (returned, for the sync's preflight warnings) saying how much room the spool may take
// there: the source's write rate times the estimated copy time.
func CheckOplogWindow(w OplogWindow, totalBytes int64, takeover time.Duration) (warning string, err error) {
	if !w.Capped || w.Capacity == 0 {
		return "", nil
	}
	if need := MinOplogWindow + takeover; w.Capacity < need {
		return "", fmt.Errorf("the source's oplog holds about %s of writes, but fleetsync needs at least %s: "+
			"the capture that keeps the sync's change events must be able to fall behind by %s and be taken over (%s, the lease TTL) without losing any; "+
			"grow the oplog (replSetResizeOplog) to hold at least %s",
			roundDuration(w.Capacity), roundDuration(need), roundDuration(MinOplogWindow), takeover, roundDuration(2*need))
	}
	copyTime := time.Duration(float64(totalBytes) / AssumedCopyRate * float64(time.Second))
	if w.Capacity >= copyTime {
		return "", nil
	}
	spool := "an unknown amount (the source's write rate cannot be measured yet)"
	if rate := w.WriteRate(); rate > 0 {
		spool = "about " + humanBytes(int64(rate*copyTime.Seconds()))
	}
	return fmt.Sprintf("copying %s takes about %s at %d MB/s, longer than the source's oplog holds (about %s): "+
		"the capture keeps the change events written meanwhile in the spool on the destination, in the metadata database, "+
		"which may need %s there (the source's oplog write rate times the copy time); make room on the destination, "+
		"or grow the source's oplog (replSetResizeOplog) to hold at least %s so the events need not wait in the spool",
		humanBytes(totalBytes), roundDuration(copyTime), AssumedCopyRate>>20, roundDuration(w.Capacity), spool, (2 * copyTime).Round(time.Hour)), nil
}

// roundDuration rounds d to the minute, or to the second under an hour, for a message.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Hour {
		return d.Round(time.Second)
	}
	return d.Round(time.Minute)
}

// EstimateBytes sums the data size of the databases the filter may select (dbStats): a quick upper
// bound for the oplog check, without a collStats per collection.
func EstimateBytes(ctx context.Context, source *mongo.Client, filter namespace.Filter) (int64, error) {
	dbs, err := source.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("cluster0: listDatabases: %w", err)
	}
	var total int64
	for _, db := range dbs {
		if !filter.MaySelectDatabase(db) {
			continue
		}
		var stats struct {
			DataSize float64 `bson:"dataSize"`
		}
		if err := source.Database(db).RunCommand(ctx, bson.D{{Key: "dbStats", Value: 1}}).Decode(&stats); err != nil {
			return 0, fmt.Errorf("cluster0: dbStats of %s: %w", db, err)
		}
		total += int64(stats.DataSize)
	}
	return total, nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<40:
		return fmt.Sprintf("%.1f TB", float64(n)/(1<<40))
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
}
