package changeevent

import (
	"testing"

	"go.mongodb.org/mongo-driver/bson"
)

// FuzzFromOplog feeds the parser arbitrary bytes, starting from every entry of the tables. It
// checks one thing: no input makes it panic. A malformed entry must come back as an error.
func FuzzFromOplog(f *testing.F) {
	for _, tc := range oplogCases {
		f.Add([]byte(ejson(tc.entry)))
	}
	for _, tc := range malformedOplogCases {
		if tc.entry != "" {
			f.Add([]byte(ejson(tc.entry)))
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, entry []byte) {
		events, err := FromOplog(bson.Raw(entry))
		if err != nil && events != nil {
			t.Fatalf("FromOplog returned events with an error: %v", err)
		}
		for _, ev := range events {
			if ev.Op == "" {
				t.Fatalf("FromOplog returned an event without an Op: %+v", ev)
			}
		}
	})
}

// FuzzFromChangeStream does the same for change events.
func FuzzFromChangeStream(f *testing.F) {
	for _, tc := range changeStreamCases {
		f.Add([]byte(ejson(tc.doc)))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		ev, err := FromChangeStream(bson.Raw(doc))
		if err == nil && ev.Op == "" {
			t.Fatalf("FromChangeStream returned an event without an Op: %+v", ev)
		}
		TokenTime(bson.Raw(doc))
	})
}
