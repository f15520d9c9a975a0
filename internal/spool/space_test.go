package spool

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"

	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// Real dbStats replies. The sandbox's has no file-system figures, so the parsing is tested on
// these; each says where it comes from.
var (
	// MongoDB's manual, dbStats, "View Free Space Allocated to Collections" (mongodb/docs,
	// source/reference/command/dbStats.txt): {dbStats: 1, scale: 1024, freeStorage: 1}, so the
	// sizes are in KiB. A disk 98.2% full.
	manualReply = `{"db": "test", "collections": 2, "views": 0, "objects": 1689, "avgObjSize": 52.56542332741267,
		"dataSize": 86.7021484375, "storageSize": 100, "freeStorageSize": 32, "indexes": 2, "indexSize": 116,
		"indexFreeStorageSize": 36, "totalSize": 216, "totalFreeStorageSize": 68, "scaleFactor": 1024,
		"fsUsedSize": 60155820, "fsTotalSize": 61255492, "ok": 1,
		"$clusterTime": {"clusterTime": {"$timestamp": {"t": 1646085664, "i": 1}}, "signature": {"hash": {"$binary": {"base64": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "subType": "00"}}, "keyId": {"$numberLong": "0"}}},
		"operationTime": {"$timestamp": {"t": 1646085664, "i": 1}}}`
	// mongod's reply for a database that does not exist yet (src/mongo/db/commands/dbcommands.cpp,
	// CmdDBStats: "fsUsedSize" and "fsTotalSize" appended as 0), field for field.
	missingDatabaseReply = `{"db": "fleetsync", "collections": 0, "views": 0, "objects": 0, "avgObjSize": 0, "dataSize": 0,
		"storageSize": 0, "indexes": 0, "indexSize": 0, "totalSize": 0, "scaleFactor": 1, "fsUsedSize": 0, "fsTotalSize": 0, "ok": 1}`
	// The sandbox's reply (mongo-java-server), as its dbStats answered in this package's test below.
	sandboxReply = `{"db": "fleetsync", "collections": 1, "objects": 1, "avgObjSize": 29.0, "dataSize": 29.0, "storageSize": {"$numberLong": "0"},
		"numExtents": 0, "indexes": 1, "indexSize": {"$numberLong": "1"}, "fileSize": {"$numberLong": "0"}, "nsSizeMB": 0, "ok": 1.0}`
)

func ext(t *testing.T, s string) bson.Raw {
	t.Helper()
	var raw bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(s), false, &raw); err != nil {
		t.Fatalf("a test reply does not parse: %v", err)
	}
	return raw
}

func TestParseDBStatsOnRealReplies(t *testing.T) {
	s, ok := ParseDBStats(ext(t, manualReply))
	if !ok || s.Used != 60155820*1024 || s.Total != 61255492*1024 || s.Free() != 1099672*1024 {
		t.Fatalf("the manual's reply (scale 1024): %+v ok %v", s, ok)
	}
	for name, reply := range map[string]string{"a database not created yet": missingDatabaseReply, "the sandbox": sandboxReply} {
		if s, ok := ParseDBStats(ext(t, reply)); ok {
			t.Errorf("%s: %+v read as file-system figures; they are unknown", name, s)
		}
	}

	// A mongos answers with each shard's reply under raw and their sum at the top level
	// (src/mongo/s/commands/cluster_db_stats_cmd.cpp: appendRawResponses, then aggregateResults).
	// Built in that layout from two shard replies, the manual's and a roomy one (the figures of a
	// mongod 4.x db.stats() quoted in a public note): the full shard must not hide in the sum.
	full := ext(t, manualReply)
	roomy := ext(t, `{"db": "test", "scaleFactor": 1, "fsUsedSize": {"$numberLong": "239249063936"}, "fsTotalSize": {"$numberLong": "499963174912"}, "ok": 1}`)
	mongos, err := bson.Marshal(bson.D{
		{Key: "raw", Value: bson.D{{Key: "shard0/a:27018,b:27018", Value: roomy}, {Key: "shard1/c:27018,d:27018", Value: full}}},
		{Key: "db", Value: "test"}, {Key: "scaleFactor", Value: 1},
		{Key: "fsUsedSize", Value: float64(239249063936 + 60155820*1024)}, {Key: "fsTotalSize", Value: float64(499963174912 + 61255492*1024)},
		{Key: "ok", Value: 1.0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := ParseDBStats(mongos); !ok || s.Free() != 1099672*1024 {
		t.Fatalf("a mongos reply: %+v ok %v, want the fuller shard's %d free", s, ok, 1099672*1024)
	}
}

func TestSpaceWarning(t *testing.T) {
	const gb = 1_000_000_000
	s, _ := ParseDBStats(ext(t, manualReply))
	w := SpaceWarning(s, 0, 0)
	if w == "" || !strings.Contains(w, "1.1 GB free of 62.7 GB (1.8%)") || !strings.Contains(w, "grow its disk") {
		t.Fatalf("a disk 98%% full, with nothing left to write: %q", w)
	}
	roomy := Space{Used: 100 * gb, Total: 1000 * gb} // 900 GB free
	for _, c := range []struct {
		name            string
		waiting, toCopy int64
		warn            bool
	}{
		{"nothing to write", 0, 0, false},
		{"needs 2 x 400 GB, has 900", 100 * gb, 300 * gb, false},
		{"needs 2 x 460 GB, has 900", 160 * gb, 300 * gb, true},
		{"negative counts (a stale estimate) count as nothing", -5 * gb, -1, false},
	} {
		w := SpaceWarning(roomy, c.waiting, c.toCopy)
		if (w != "") != c.warn {
			t.Errorf("%s: warning %q", c.name, w)
		}
		if c.warn && !strings.Contains(w, "the sync still needs about 920.0 GB there (160.0 GB of captured change events waiting in the spool and 300.0 GB still to copy") {
			t.Errorf("%s: the warning does not name the numbers: %q", c.name, w)
		}
	}
	if w := SpaceWarning(Space{Used: 91 * gb, Total: 100 * gb}, 0, 0); !strings.Contains(w, "9.0 GB free of 100.0 GB (9.0%)") {
		t.Fatalf("under 10%% free with nothing to write: %q", w)
	}
}

// On the sandbox, whose dbStats has no file-system figures: no figures, and no error.
func TestReadSpaceOnSandbox(t *testing.T) {
	t.Parallel()
	client := sandboxtest.Connect(t, sandboxtest.Server(t, false))
	db := client.Database("fleetsync")
	if _, err := db.Collection("spool").InsertOne(context.Background(), bson.D{{Key: "x", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	s, ok, err := ReadSpace(context.Background(), db)
	if err != nil || ok {
		t.Fatalf("the sandbox's dbStats: %+v ok %v err %v; want unknown without an error", s, ok, err)
	}
}
