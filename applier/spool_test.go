package applier

import (
	"context"
	"sort"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/internal/changeevent"
	"github.com/fleetsync/fleetsync/internal/changeevent/realdocs"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/spool"
)

// Spool keys of real change events sort as the events' cluster times do, and an oplog position's
// key sorts before a change event's at the same time.
func TestSpoolKeysSortLikeTheSourceHistory(t *testing.T) {
	var positions []Position
	for _, doc := range []string{realdocs.ChangeStreamUpdateTruncatedArrays, realdocs.ChangeStreamInsert} {
		var raw bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(doc), false, &raw); err != nil {
			t.Fatal(err)
		}
		p, err := changeEventPosition(raw)
		if err != nil {
			t.Fatal(err)
		}
		positions = append(positions, p)
	}
	keys := []string{spool.Key(positions[0]), spool.Key(positions[1])}
	if !sort.StringsAreSorted([]string{keys[1], keys[0]}) || !positions[1].TS.Before(positions[0].TS) {
		t.Fatalf("keys %q for cluster times %v, %v: the earlier event's key must sort first", keys, positions[0].TS, positions[1].TS)
	}
	oplogKey := spool.Key(Position{TS: positions[1].TS})
	if !(oplogKey < keys[1]) || !(keys[1] < spool.Key(Position{TS: primitive.Timestamp{T: positions[1].TS.T, I: positions[1].TS.I + 1}})) {
		t.Fatalf("at one cluster time the oplog key %q must sort before the change event's %q, and both before the next time's", oplogKey, keys[1])
	}
}

// spoolRig is a metadata database on a sandbox server with a spool in it.
type spoolRig struct {
	meta *metadata.DB
	sp   *spool.Spool
}

func newSpoolRig(t *testing.T) spoolRig {
	meta := metadata.Open(sandboxtest.Connect(t, sandboxtest.Server(t, false)), namespace.DefaultMetadataDB, "s")
	return spoolRig{meta: meta, sp: spool.Open(meta, 0)}
}

// captured sets the capture's checkpoint.
func (r spoolRig) captured(t *testing.T, through Position) {
	t.Helper()
	_, err := r.meta.Collection(metadata.CollCapture).UpdateOne(context.Background(), bson.D{{Key: "_id", Value: "s"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "position", Value: through}}}}, options.Update().SetUpsert(true))
	if err != nil {
		t.Fatal(err)
	}
}

// oplogInsert is an oplog entry as MongoDB writes one for an insert of {_id: id} into d.c.
func oplogInsert(ts uint32, id int) bson.Raw {
	raw, _ := bson.Marshal(bson.D{
		{Key: "op", Value: "i"}, {Key: "ns", Value: "d.c"}, {Key: "o", Value: bson.D{{Key: "_id", Value: id}}},
		{Key: "ts", Value: primitive.Timestamp{T: ts, I: 1}}, {Key: "t", Value: int64(1)}, {Key: "v", Value: int64(2)},
		{Key: "wall", Value: primitive.NewDateTimeFromTime(time.Unix(int64(ts), 0))},
	})
	return raw
}

// The spool reader reads only through the capture's checkpoint: a record past it may be a deposed
// capturer's, with a hole before it that the live capturer has yet to fill, and reading it would
// skip the hole for ever. Once nothing is left through the checkpoint, it switches to the live
// source after the last record it read.
func TestSpoolReaderReadsOnlyThroughTheCaptureCheckpoint(t *testing.T) {
	ctx := context.Background()
	r := newSpoolRig(t)
	// Records at 10, 11 and 13: 12 is not spooled yet; a deposed capturer appended 13.
	var entries []spool.Entry
	for _, ts := range []uint32{10, 11, 13} {
		entries = append(entries, r.sp.NewEntry(SourceOplog, Position{TS: primitive.Timestamp{T: ts, I: 1}}, oplogInsert(ts, int(ts))))
	}
	if err := r.sp.Append(ctx, entries); err != nil {
		t.Fatal(err)
	}
	r.captured(t, Position{TS: primitive.Timestamp{T: 11, I: 1}})

	var opened *Position
	sr := &spoolReader{meta: r.meta, spool: r.sp, liveKind: SourceOplog, pos: Position{TS: primitive.Timestamp{T: 10, I: 1}}, inclusive: true,
		open: func(pos Position, _ bool) reader {
			opened = &pos
			return emptyReader{pos}
		}}
	evs, pos, err := sr.next(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs.list) != 2 || evs.list[1].DocumentKey.Lookup("_id").Int32() != 11 || pos.TS.T != 11 {
		t.Fatalf("read %d events through %v, want the inserts at 10 and 11 only", len(evs.list), pos.TS)
	}
	if evs.covered(0) != 1 || evs.covered(1) != 2 {
		t.Errorf("a checkpoint after event 0 covers %d entries, after event 1 %d; want 1 and 2", evs.covered(0), evs.covered(1))
	}
	evs, _, err = sr.next(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if opened == nil || opened.TS.T != 11 || evs.switchAt == nil || evs.switchAt.TS != opened.TS || len(evs.list) != 0 {
		t.Fatalf("switched to the live source at %v (handed to the writer: %v), want right after 11 (the last record read)", opened, evs.switchAt)
	}
}

// Where the capture read the source the way the live reader will, the switch is at the capture's
// checkpoint, past records that were not the sync's: the live reader need not go back to the last
// spooled record, which a busy source's oplog may no longer hold when the sync's namespaces are
// quiet.
func TestSpoolReaderSwitchesAtTheCapturesCheckpoint(t *testing.T) {
	ctx := context.Background()
	r := newSpoolRig(t)
	if err := r.sp.Append(ctx, []spool.Entry{r.sp.NewEntry(SourceOplog, Position{TS: primitive.Timestamp{T: 10, I: 1}}, oplogInsert(10, 10))}); err != nil {
		t.Fatal(err)
	}
	_, err := r.meta.Collection(metadata.CollCapture).UpdateOne(ctx, bson.D{{Key: "_id", Value: "s"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "position", Value: Position{TS: primitive.Timestamp{T: 50, I: 3}}}, {Key: "source", Value: SourceOplog}}}},
		options.Update().SetUpsert(true))
	if err != nil {
		t.Fatal(err)
	}
	var opened *Position
	sr := &spoolReader{meta: r.meta, spool: r.sp, liveKind: SourceOplog, pos: Position{TS: primitive.Timestamp{T: 9, I: 1}}, inclusive: true,
		open: func(pos Position, _ bool) reader { opened = &pos; return emptyReader{pos} }}
	for range 2 {
		if _, _, err := sr.next(ctx, 100); err != nil {
			t.Fatal(err)
		}
	}
	if opened == nil || opened.TS != (primitive.Timestamp{T: 50, I: 3}) {
		t.Fatalf("switched at %v, want the capture's checkpoint 50.3", opened)
	}
	// A capture of another kind: its position means nothing to the live reader; the switch is
	// after the last spooled record.
	sr = &spoolReader{meta: r.meta, spool: r.sp, liveKind: SourceChangeStream, pos: Position{TS: primitive.Timestamp{T: 9, I: 1}}, inclusive: true,
		open: func(pos Position, _ bool) reader { opened = &pos; return emptyReader{pos} }}
	for range 2 {
		if _, _, err := sr.next(ctx, 100); err != nil {
			t.Fatal(err)
		}
	}
	if opened.TS != (primitive.Timestamp{T: 10, I: 1}) {
		t.Fatalf("a change stream applier after an oplog capture switched at %v, want after the last spooled record 10.1", opened)
	}
}

// A change event goes through the spool unchanged: the applier reads the same event, and resumes
// the live stream after its resume token.
func TestChangeEventsGoThroughTheSpoolUnchanged(t *testing.T) {
	ctx := context.Background()
	r := newSpoolRig(t)
	var raw bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(realdocs.ChangeStreamInsert), false, &raw); err != nil {
		t.Fatal(err)
	}
	at, err := changeEventPosition(raw)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := spoolEntries(r.sp, SourceChangeStream, []record{{raw: raw, pos: at}}, namespace.Filter{})
	if len(entries) != 1 {
		t.Fatalf("the capture keeps %d of one insert into a user namespace", len(entries))
	}
	if err := r.sp.Append(ctx, entries); err != nil {
		t.Fatal(err)
	}
	r.captured(t, at)
	sr := &spoolReader{meta: r.meta, spool: r.sp, pos: Position{TS: primitive.Timestamp{T: at.TS.T - 1}}, inclusive: true}
	evs, pos, err := sr.next(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := changeevent.FromChangeStream(raw)
	if len(evs.list) != 1 || evs.list[0].Op != want.Op || !bsonEqual(evs.list[0].FullDocument, want.FullDocument) ||
		!bsonEqual(pos.Token, raw.Lookup("_id").Document()) || pos.TS != at.TS {
		t.Fatalf("read back %+v at %v, want %+v at the event's own token", evs.list, pos, want)
	}
}

// emptyReader stands for the live source in a test that only needs the switch.
type emptyReader struct{ pos Position }

func (e emptyReader) next(context.Context, int) (events, Position, error) {
	return events{}, e.pos, nil
}
func (emptyReader) close(context.Context) {}

func bsonEqual(a, b bson.Raw) bool { return string(a) == string(b) }
