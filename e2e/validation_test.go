package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo/options"

	"github.com/fleetsync/fleetsync/applier"
	"github.com/fleetsync/fleetsync/internal/metadata"
	"github.com/fleetsync/fleetsync/internal/namespace"
	"github.com/fleetsync/fleetsync/internal/verify"
	"github.com/fleetsync/fleetsync/web"
)

// A validator added after documents that break it (the usual way a schema is tightened) is copied
// to the destination with the collection; the legacy documents, and the ones written around it
// with bypassDocumentValidation during the sync, must reach the destination all the same: copy
// inserts, applied writes and refreshes bypass validation, as mongosync's do. Without that every
// copy batch of the collection fails until the partition is given up, and the copy never ends.
func TestDocumentsBreakingTheValidatorAreCopiedAndApplied(t *testing.T) {
	s := newScratchSync(t)
	source, destination, db, metaDB, src := s.source, s.destination, s.db, s.metaDB, s.src
	ctx, cancel := context.WithTimeout(context.Background(), ceaTimeout)
	defer cancel()

	// Legacy accounts without an email, then a validator that requires one.
	seedCollection(t, src, "accounts", 0, 2000, func(i int) bson.D { return bson.D{{Key: "name", Value: fmt.Sprintf("legacy %d", i)}} })
	must(t, src.RunCommand(ctx, bson.D{{Key: "collMod", Value: "accounts"}, {Key: "validator", Value: bson.D{
		{Key: "$jsonSchema", Value: bson.D{{Key: "bsonType", Value: "object"}, {Key: "required", Value: bson.A{"email"}}}}}},
		{Key: "validationLevel", Value: "strict"}, {Key: "validationAction", Value: "error"}}).Err())

	api := startNodes(t, ctx, db, metaDB, applier.ModeAuto)
	resp, err := http.Post(api+"/start", "application/json", strings.NewReader(startBody(db)))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("start: %v %v", resp, err)
	}
	resp.Body.Close()
	waitProgress(t, ctx, api, "the copy to complete", func(p web.Progress) bool { return p.Fleet.Phase == metadata.PhaseApply })

	// During the apply phase: an insert, an update and a replace that break the validator, written
	// with bypassDocumentValidation as an application's migration script would.
	accounts := src.Collection("accounts")
	_, err = accounts.InsertOne(ctx, bson.D{{Key: "_id", Value: int64(5000)}, {Key: "name", Value: "late legacy"}},
		options.InsertOne().SetBypassDocumentValidation(true))
	must(t, err)
	_, err = accounts.UpdateOne(ctx, bson.D{{Key: "_id", Value: int64(7)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "renamed"}}}},
		options.Update().SetBypassDocumentValidation(true))
	must(t, err)
	_, err = accounts.ReplaceOne(ctx, bson.D{{Key: "_id", Value: int64(8)}}, bson.D{{Key: "name", Value: "replaced"}},
		options.Replace().SetBypassDocumentValidation(true))
	must(t, err)

	p := waitProgress(t, ctx, api, "lag 0", func(p web.Progress) bool {
		a := p.Fleet.Applier
		return a != nil && a.AppliedThrough != nil && a.SourceLatest != nil && !a.AppliedThrough.Less(*a.SourceLatest)
	})
	if p.Fleet.Applier.Error != "" {
		t.Fatalf("applier error: %s", p.Fleet.Applier.Error)
	}
	report, err := verify.Run(ctx, source, destination, verify.Options{MetadataDB: metaDB,
		Include: []namespace.Namespace{{DB: db, Coll: "accounts"}}})
	must(t, err)
	for _, n := range report.Namespaces {
		if !n.Equal() {
			t.Errorf("%s differs: options %v, missing %d, extra %d, different %d, samples %+v", n.NS, n.OptionDiffs, n.Missing, n.Extra, n.Different, n.Samples)
		}
	}
}
