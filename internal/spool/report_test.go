package spool

import (
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/bson/primitive"
)

func TestWaiting(t *testing.T) {
	c := Capture{Captured: 1000, CapturedBytes: 250_000}
	if got := Waiting(c, 400); got != 600 {
		t.Fatalf("waiting %d, want 600", got)
	}
	if got := WaitingBytes(c, 400); got != 150_000 {
		t.Fatalf("waiting bytes %d, want 600 entries of 250 bytes", got)
	}
	// The applier's count may be read after the capture's, written later by another node.
	if Waiting(c, 1200) != 0 || WaitingBytes(c, 1200) != 0 || WaitingBytes(Capture{}, 0) != 0 {
		t.Fatal("waiting below 0, or bytes without entries")
	}
	// Once the applier reads the source, the events captured after its switch are read from the
	// source, not the spool, which is cleared: nothing waits (seen with a real capture: 3231
	// captured, 2954 applied from the spool, done).
	done := Capture{Captured: 3231, CapturedBytes: 1_347_794, Done: true}
	if Waiting(done, 2954) != 0 || WaitingBytes(done, 2954) != 0 {
		t.Fatalf("a capture that is over leaves %d events (%d bytes) waiting", Waiting(done, 2954), WaitingBytes(done, 2954))
	}
}

func TestLagWarning(t *testing.T) {
	now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	at := func(secondsAgo int) *Position {
		return &Position{TS: primitive.Timestamp{T: uint32(now.Unix()) - uint32(secondsAgo), I: 1}}
	}
	// The oplog spans the last hour; its oldest tenth is the 360 s after its oldest entry.
	oldest := primitive.Timestamp{T: uint32(now.Unix()) - 3600, I: 1}
	newest := primitive.Timestamp{T: uint32(now.Unix()), I: 1}
	for _, c := range []struct {
		name string
		c    Capture
		want []string // parts of the warning; nil: none
	}{
		{"keeping up", Capture{Position: at(2), UpdatedAt: now, OplogOldest: oldest, OplogNewest: newest}, nil},
		{"behind, but under the threshold", Capture{Position: at(LagWarningSeconds - 1), UpdatedAt: now, OplogOldest: oldest, OplogNewest: newest}, nil},
		{"lagging", Capture{Position: at(900), UpdatedAt: now, OplogOldest: oldest, OplogNewest: newest},
			[]string{"is 900 s behind the source (warned above 300 s)", "the capturing node is node-b"}},
		{"in the oldest tenth", Capture{Position: at(3500), UpdatedAt: now, OplogOldest: oldest, OplogNewest: newest},
			[]string{"is 3500 s behind", "and has its position 100 s from the oldest entry of the source's oplog, which spans 3600 s", "replSetResizeOplog"}},
		{"lagging with no oplog figures (a change stream through mongos)", Capture{Position: at(900), UpdatedAt: now},
			[]string{"is 900 s behind"}},
		{"at the end of the source, whatever the time", Capture{Position: at(900), UpdatedAt: now, AtEnd: true}, nil},
		{"done: the applier reads the source", Capture{Position: at(3500), UpdatedAt: now, OplogOldest: oldest, OplogNewest: newest, Done: true}, nil},
		{"no checkpoint yet", Capture{UpdatedAt: now, OplogOldest: oldest, OplogNewest: newest}, nil},
	} {
		w := LagWarning(c.c, "node-b")
		if c.want == nil && w != "" {
			t.Errorf("%s: unexpected warning %q", c.name, w)
		}
		if c.want != nil && w == "" {
			t.Errorf("%s: no warning", c.name)
		}
		for _, part := range c.want {
			if w != "" && !strings.Contains(w, part) {
				t.Errorf("%s: %q does not say %q", c.name, w, part)
			}
		}
	}
	if w := LagWarning(Capture{Position: at(900), UpdatedAt: now}, ""); !strings.Contains(w, "no node holds the capture lease") {
		t.Fatalf("no capturer: %q", w)
	}
}
