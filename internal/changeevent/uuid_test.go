package changeevent

import (
	"encoding/base64"
	"testing"

	"github.com/fleetsync/fleetsync/internal/changeevent/realdocs"
)

// Events carry their collection's UUID from MongoDB's own documents: an oplog entry's ui (a write,
// a command, the inner entries of a transaction), a change event's collectionUUID; none where the
// server gives none (dropDatabase).
func TestEventsCarryTheirCollectionsUUID(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // per event, the UUID's base64 as in the document; "" for none
		oplog     bool
	}{
		{"oplog insert", realdocs.OplogInsert, []string{"XcSxG+pfQxmo58r0aBbtcQ=="}, true},
		{"oplog rename", realdocs.OplogRename, []string{"XcSxG+pfQxmo58r0aBbtcQ=="}, true},
		{"oplog transaction", realdocs.OplogTransaction, []string{"XcSxG+pfQxmo58r0aBbtcQ==", "wdDGpTseTw6aVS8aO3ydEA==", "fV4rTB86TI62qQ4tT2qLHA=="}, true},
		{"oplog dropDatabase", realdocs.OplogDropDatabase, []string{""}, true},
		{"change stream insert", realdocs.ChangeStreamInsert, []string{""}, false}, // without showExpandedEvents
		{"change stream rename, expanded", realdocs.ChangeStreamRenameReplacingTarget, []string{"XcSxG+pfQxmo58r0aBbtcQ=="}, false},
		{"change stream dropDatabase", realdocs.ChangeStreamDropDatabase, []string{""}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var evs []Event
			if tc.oplog {
				var err error
				if evs, err = FromOplog(ejson(tc.doc)); err != nil {
					t.Fatal(err)
				}
			} else {
				ev, err := FromChangeStream(ejson(tc.doc))
				if err != nil {
					t.Fatal(err)
				}
				evs = []Event{ev}
			}
			if len(evs) != len(tc.want) {
				t.Fatalf("%d events, want %d", len(evs), len(tc.want))
			}
			for i, ev := range evs {
				got := base64.StdEncoding.EncodeToString(ev.UUID.Data)
				if got != tc.want[i] || (got != "" && ev.UUID.Subtype != 4) {
					t.Errorf("%s event UUID %q (subtype %d), want %q", ev.Op, got, ev.UUID.Subtype, tc.want[i])
				}
			}
		})
	}
}
