package spool_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/bson/primitive"

	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/sandboxtest"
	"github.com/fleetsync/fleetsync/internal/spool"
)

// BenchmarkSandboxSpoolRead times one Read of a 90,000-entry spool on the sandbox, by how many
// entries lie past the position and how many it returns: it explains the cost of applying through
// the spool in bench cea (docs/benchmarks.md, "Capture (issue 13)").
func BenchmarkSandboxSpoolRead(b *testing.B) {
	const entries = 90_000
	ctx := context.Background()
	meta := metadata.Open(sandboxtest.Connect(b, sandboxtest.Server(b, false)), "fleetsync", "bench")
	sp := spool.Open(meta, 0)
	// About the size of bench cea's records (432 bytes each).
	raw, err := bson.Marshal(bson.D{{Key: "pad", Value: strings.Repeat("x", 420)}})
	if err != nil {
		b.Fatal(err)
	}
	at := func(i int) spool.Position { return spool.Position{TS: primitive.Timestamp{T: 1000, I: uint32(i)}} }
	for i := 1; i <= entries; i += 1000 {
		var batch []spool.Entry
		for j := i; j < i+1000 && j <= entries; j++ {
			batch = append(batch, sp.NewEntry(spool.KindOplog, at(j), raw))
		}
		if err := sp.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	for _, past := range []int{2000, 45_000, entries - 1} {
		for _, max := range []int{2000, 10} {
			b.Run(fmt.Sprintf("past=%d/max=%d", past, max), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					got, err := sp.Read(ctx, at(entries-past), false, max)
					if err != nil || len(got) != max {
						b.Fatalf("read %d entries (%v), want %d", len(got), err, max)
					}
				}
			})
		}
	}
}
