package spool

import (
	"context"
	"fmt"
	"math"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
)

// The spool grows on the destination while the copy runs, on top of the copy itself: /progress
// warns before the destination's disk fills, from the file-system figures dbStats gives.

// Space is the file system that holds a database's files, as dbStats reports it, in bytes.
type Space struct {
	Used, Total int64
}

// Free is the space left.
func (s Space) Free() int64 { return max(s.Total-s.Used, 0) }

// ReadSpace asks for db's dbStats (scale 1: bytes); ok is false when the reply has no file-system
// figures (see ParseDBStats). dbStats on a database reads only its catalog's sizes, so it is cheap
// for the metadata database, which holds a handful of collections.
func ReadSpace(ctx context.Context, db *mongo.Database) (s Space, ok bool, err error) {
	reply, err := db.RunCommand(ctx, bson.D{{Key: "dbStats", Value: 1}, {Key: "scale", Value: 1}}).Raw()
	if err != nil {
		return Space{}, false, fmt.Errorf("dbStats of %s: %w", db.Name(), err)
	}
	s, ok = ParseDBStats(reply)
	return s, ok, nil
}

// ParseDBStats reads fsUsedSize and fsTotalSize from a dbStats reply, in bytes (the reply's
// scaleFactor undone). ok is false when they are missing or zero: servers without them (the
// sandbox), an in-memory storage engine (mongod leaves them out), or a database that does not
// exist yet, for which mongod answers 0 for both (src/mongo/db/commands/dbcommands.cpp, CmdDBStats).
// A mongos reply sums the shards' figures at the top level, which would hide one full shard, so
// when it carries each shard's reply under raw (src/mongo/s/commands/cluster_db_stats_cmd.cpp,
// appendRawResponses), the shard with the least free space is the answer.
func ParseDBStats(reply bson.Raw) (Space, bool) {
	if raw, ok := reply.Lookup("raw").DocumentOK(); ok {
		elems, _ := raw.Elements()
		var worst Space
		found := false
		for _, e := range elems {
			shard, ok := e.Value().DocumentOK()
			if !ok {
				continue
			}
			if s, ok := parseOne(shard); ok && (!found || s.Free() < worst.Free()) {
				worst, found = s, true
			}
		}
		if found {
			return worst, true
		}
	}
	return parseOne(reply)
}

func parseOne(reply bson.Raw) (Space, bool) {
	used, ok1 := number(reply.Lookup("fsUsedSize"))
	total, ok2 := number(reply.Lookup("fsTotalSize"))
	if !ok1 || !ok2 || total <= 0 {
		return Space{}, false
	}
	scale := 1.0
	if f, ok := number(reply.Lookup("scaleFactor")); ok && f >= 1 {
		scale = f
	}
	return Space{Used: int64(used * scale), Total: int64(total * scale)}, true
}

// number reads a BSON number of any type (servers write these sizes as int32, int64 or double).
func number(v bson.RawValue) (float64, bool) {
	switch v.Type {
	case bson.TypeDouble:
		f := v.Double()
		return f, !math.IsNaN(f) && !math.IsInf(f, 0)
	case bson.TypeInt32:
		return float64(v.Int32()), true
	case bson.TypeInt64:
		return float64(v.Int64()), true
	}
	return 0, false
}

// SpaceSafetyFactor multiplies what the sync still has to write to the destination: the bytes
// counted (dataSize estimates and spool entries) are uncompressed documents, but the destination
// also builds their indexes, keeps WiredTiger's history and journal, and the spool's entries carry
// their key and position; twice the data is a margin that covers these without warning for nothing.
const SpaceSafetyFactor = 2

// MinFreeShare is the free share of the destination's disk below which /progress warns whatever
// the sync still needs: a file system over 90% full is where MongoDB Atlas raises its disk alerts,
// and where WiredTiger's checkpoints and compaction start to lack room.
const MinFreeShare = 0.10

// SpaceWarning says, in one sentence, when the destination's disk is a risk: its free space is
// under SpaceSafetyFactor times what the sync still has to write there (waiting, the spool's
// entries not applied yet; toCopy, the copy's remaining bytes), or under MinFreeShare of the disk.
// "" when it is not.
func SpaceWarning(s Space, waiting, toCopy int64) string {
	need := SpaceSafetyFactor * (max(waiting, 0) + max(toCopy, 0))
	free := s.Free()
	low := float64(free) < MinFreeShare*float64(s.Total)
	if free >= need && !low {
		return ""
	}
	return fmt.Sprintf("the destination's disk holding the metadata database has %s free of %s (%.1f%%); the sync still needs about %s there "+
		"(%s of captured change events waiting in the spool and %s still to copy, times %d for indexes and storage overhead), "+
		"and fleetsync warns under that or under %.0f%% free: free space on the destination or grow its disk, since a full disk stops the copy, the capture and the applier",
		formatBytes(free), formatBytes(s.Total), 100*float64(free)/float64(s.Total), formatBytes(need), formatBytes(waiting), formatBytes(toCopy),
		SpaceSafetyFactor, 100*MinFreeShare)
}

// formatBytes writes n in decimal units, as fleetsync's other reports do.
func formatBytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"kB", "MB", "GB", "TB", "PB", "EB"}
	v, i := float64(n)/1000, 0
	for v >= 999.95 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}
