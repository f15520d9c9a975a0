package spool

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
)

// A record too large to share a document with its entry's fields (an oplog entry of a large
// transaction can be 16 MB and more) is stored in chunks and read back whole, in its place in the
// source's order; trimming and clearing take its chunks too. The limit is lowered to 1 KB here.
func TestLargeRecordsAreSpooledInChunks(t *testing.T) {
	defer func(old int) { maxInline = old }(maxInline)
	maxInline = 1 << 10
	ctx := context.Background()
	meta := metadata.Open(sandboxtest.Connect(t, sandboxtest.Server(t, false)), namespace.DefaultMetadataDB, "s")
	sp := Open(meta, 0)
	record := func(size int) bson.Raw {
		raw, _ := bson.Marshal(bson.D{{Key: "op", Value: "i"}, {Key: "pad", Value: strings.Repeat("x", size)}})
		return raw
	}
	at := func(t uint32) Position { return Position{TS: primitive.Timestamp{T: t, I: 1}} }
	small, large := record(10), record(3500)
	entries := []Entry{sp.NewEntry(KindOplog, at(1), small), sp.NewEntry(KindOplog, at(2), large), sp.NewEntry(KindOplog, at(3), small)}
	for range 2 { // the second append is a capturer's replay: duplicates, refused
		if err := sp.Append(ctx, entries); err != nil {
			t.Fatal(err)
		}
	}
	got, err := sp.Read(ctx, at(0), false, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !bytes.Equal(got[1].Raw, large) || !bytes.Equal(got[0].Raw, small) || !bytes.Equal(got[2].Raw, small) {
		t.Fatalf("read back %d entries; want the three records, the large one whole", len(got))
	}
	chunks := func() int64 {
		n, err := meta.Collection(metadata.CollSpoolChunks).CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := chunks(); n != 4 {
		t.Fatalf("%d chunks stored for a record of %d bytes in 1 KB pieces, want 4", n, len(large))
	}
	if _, err := sp.TrimThrough(ctx, at(1)); err != nil {
		t.Fatal(err)
	}
	if n := chunks(); n != 4 {
		t.Fatalf("trimming through the entry before the large one left %d chunks, want its 4", n)
	}
	if _, err := sp.TrimThrough(ctx, at(2)); err != nil {
		t.Fatal(err)
	}
	if n := chunks(); n != 0 {
		t.Fatalf("trimming through the large record left %d of its chunks", n)
	}
	if err := sp.Append(ctx, entries[1:2]); err != nil {
		t.Fatal(err)
	}
	if err := Clear(ctx, meta); err != nil {
		t.Fatal(err)
	}
	if n := chunks(); n != 0 {
		t.Fatalf("clearing the spool left %d chunks", n)
	}
}
