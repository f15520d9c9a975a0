package worker

import (
	"errors"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"

	"github.com/fleetsync/fleetsync/internal/changeevent/realdocs"
)

// The copy reads what became of its collection from MongoDB's own CollectionUUIDMismatch replies
// (internal/changeevent/realdocs): renamed within the database (actualCollection names it) or gone
// (actualCollection null).
func TestMismatchIsReadFromMongoDBsReply(t *testing.T) {
	for _, tc := range []struct {
		name, reply, expected, actual string
	}{
		{"renamed", realdocs.ReplyCollectionUUIDMismatch, "coll_2", "coll"},
		{"gone", realdocs.ReplyCollectionUUIDMismatchNoCollection, "coll", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var raw bson.Raw
			if err := bson.UnmarshalExtJSON([]byte(tc.reply), false, &raw); err != nil {
				t.Fatal(err)
			}
			// What the driver makes of the reply (its replaceErrors keeps the reply as Raw), wrapped
			// as the worker wraps errors.
			err := fmt.Errorf("reading: %w", mongo.CommandError{Code: 361, Name: "CollectionUUIDMismatch", Raw: raw})
			m, ok := mismatchOf(err)
			if !ok || m.db != "test" || m.expected != tc.expected || m.actual != tc.actual {
				t.Errorf("mismatchOf = %+v, %v; want db test, expected %q, actual %q", m, ok, tc.expected, tc.actual)
			}
		})
	}
	if _, ok := mismatchOf(errors.New("(NamespaceNotFound) ns not found")); ok {
		t.Error("an error other than CollectionUUIDMismatch was read as one")
	}
}
